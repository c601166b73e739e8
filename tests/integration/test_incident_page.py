"""The incident page of a real incident, in a real browser: a storm on the real broker becomes
an incident, the worker serves its page, headless Chromium renders it (screenshot kept under
``test-output/``) and nothing an alert carries runs in it. The pages answer 503 at once while
Redis hangs or is down."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image

from pipeline.app.localstack import Service, start_redis
from pipeline.domain.schemas import Alert, AlertStatus, Severity, encode
from tests.integration.chromium import OUTPUT, chromium_binary, dom, screenshot
from tests.integration.conftest import Stack, wait_for

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
EVIL = '<script>document.body.dataset.pwned="1"</script>'
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}

# productcatalogservice saturates; the services that call it see latency and errors in the
# next minute; two of them recover (service, name, severity, fired at s, resolved at s)
STORM = [
    ("productcatalogservice", "CPUSaturation", Severity.critical, 0, None),
    ("recommendationservice", "HighLatencyP99", Severity.warning, 30, 150),
    ("checkoutservice", "HighLatencyP99", Severity.warning, 40, None),
    ("frontend", "HighLatencyP99", Severity.critical, 60, 200),
    ("frontend", "ErrorRateHigh", Severity.warning, 70, None),
]
ROOT_RED = (201, 42, 42)  # the root cause's box (#c92a2a)


def _storm() -> list[Alert]:
    out = []
    for i, (service, name, severity, fired, resolved) in enumerate(STORM):
        for status, dt in (("firing", fired), ("resolved", resolved)):
            if dt is not None:
                out.append(
                    Alert(
                        id=f"storm-{i}" if status == "firing" else f"storm-{i}-resolved",
                        source="integration-test",
                        service=service,
                        name=name,
                        severity=severity,
                        status=AlertStatus(status),
                        timestamp=T0 + timedelta(seconds=dt),
                        labels={"alertname": name, "service": service},
                        annotations={"summary": f"{name} on {service}"},
                    )
                )
    return sorted(out, key=lambda a: a.timestamp)


def _evil() -> Alert:
    """An alert for a service outside the topology (an incident of its own) whose every
    free field tries to run a script in the page."""
    return Alert(
        id='evil-1"><img src=x onerror="document.body.dataset.pwned=2">',
        source="integration-test",
        service=f"legacy{EVIL}",
        name=f"Broken{EVIL}",
        severity=Severity.error,
        status=AlertStatus.firing,
        timestamp=T0 + timedelta(seconds=10),
        labels={"team": EVIL},
        annotations={"summary": EVIL, "runbook_url": "javascript:alert(1)"},
    )


def _get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> Any:
    req = urllib.request.Request(url, headers=headers or {})
    return urllib.request.urlopen(req, timeout=timeout)


def _status(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    try:
        with _get(url, headers) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


def _document(base: str, incident_id: str) -> dict[str, Any] | None:
    code, body, _ = _status(f"{base}/incidents/{quote(incident_id, safe='')}")
    return json.loads(body) if code == 200 else None


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_binary()


def test_incident_page_in_headless_chromium(
    stack: Stack, chromium: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.start_worker()
    base = f"http://127.0.0.1:{stack.web_port}"
    stack.produce_keyed("alerts.raw", [encode(a) for a in [*_storm(), _evil()]])

    def listing() -> dict[str, Any]:
        code, body, _ = _status(f"{base}/incidents?format=json")
        assert code == 200, body
        return dict(json.loads(body))

    def settled() -> dict[str, Any] | None:
        rows = [r for r in listing()["open"] if r["root_cause"] == "productcatalogservice"]
        doc = _document(base, rows[0]["id"]) if rows else None
        if doc is None:
            return None
        resolved = [a for a in doc["alerts"] if a.get("resolved_at")]
        return doc if len(doc["members"]) == 5 and len(resolved) == 2 else None

    doc = wait_for(settled, 90, "the storm's incident with its resolves in Redis")
    incident_id = doc["id"]
    assert sorted(doc["services"]) == sorted({s for s, *_ in STORM})

    # the list: HTML for browsers, JSON for API clients
    code, html, headers = _status(f"{base}/incidents", BROWSER)
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    assert f'href="/incidents/{incident_id}"' in html
    listed = listing()
    assert incident_id in [r["id"] for r in listed["open"]] and listed["open_count"] == 2

    # the page: topology picture, explanation, timeline, counts; scripts forbidden
    page_url = f"{base}/incidents/{incident_id}"
    code, html, headers = _status(page_url, BROWSER)
    assert code == 200, html
    assert "script-src" not in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="topology"' in html
    assert 'class="node root" data-service="productcatalogservice"' in html
    for service, *_ in STORM:
        assert f'data-service="{service}"' in html
    assert "Root cause productcatalogservice" in html  # the explanation
    assert html.count('class="lane-label') == 4 and 'class="resolved-t"' in html
    # the JSON endpoint is unchanged for API clients
    assert _document(base, incident_id) == doc

    path = screenshot(chromium, page_url, OUTPUT / "incident-page.png", 1440, 1500)
    with capsys.disabled():
        print(f"\nincident page screenshot: {path}")
    with Image.open(path) as img:
        assert img.size == (1440, 1500)
        rgb = img.convert("RGB")
        colours = rgb.getcolors(maxcolors=1_000_000) or []
        assert len(colours) > 200, "the screenshot is (nearly) blank"
        red = sum(
            n
            for n, c in colours
            if all(abs(a - b) <= 12 for a, b in zip(c, ROOT_RED, strict=False))
        )
        assert red > 3000, f"the root cause's red box is not in the screenshot ({red} px)"

    # the evil incident's page: every field escaped, no script ran in the browser
    (evil_id,) = [r["id"] for r in listed["open"] if r["id"] != incident_id]
    evil_url = f"{base}/incidents/{quote(evil_id, safe='')}"
    code, html, _ = _status(evil_url, BROWSER)
    assert code == 200 and "&lt;script&gt;" in html and "<script" not in html.lower()
    rendered = dom(chromium, evil_url)
    assert "pwned" not in rendered.split("<body", 1)[1].split(">", 1)[0]
    assert "&lt;script&gt;" in rendered and "<img" not in rendered
    screenshot(chromium, evil_url, OUTPUT / "incident-page-escaped.png", 1440, 900)


@pytest.fixture
def own_redis() -> Iterator[Service]:
    service = start_redis()
    yield service
    if service.proc.poll() is None:
        os.killpg(service.proc.pid, signal.SIGCONT)
    service.stop()


def test_pages_answer_503_at_once_while_redis_hangs_or_is_down(
    stack: Stack, own_redis: Service
) -> None:
    stack.start_worker(extra_env={"STORMWATCH_REDIS__URL": own_redis.url})
    base = f"http://127.0.0.1:{stack.web_port}"
    assert _status(f"{base}/incidents/nope")[0] == 404

    def answers_503(url: str, headers: dict[str, str] | None = None) -> str:
        started = time.monotonic()
        code, body, resp_headers = _status(url, headers)
        took = time.monotonic() - started
        assert code == 503, (url, code, body)
        assert took < 4.0, f"{url} took {took:.1f} s"
        assert resp_headers["Retry-After"] == "5"
        return body

    os.killpg(own_redis.proc.pid, signal.SIGSTOP)  # Redis hangs: accepts, never answers
    try:
        body = answers_503(f"{base}/incidents/nope")
        error = json.loads(body)["error"]
        assert "Timeout" in error or "did not answer" in error, error
        assert "Redis unavailable" in answers_503(f"{base}/incidents/nope", BROWSER)
        assert "Redis unavailable" in answers_503(f"{base}/incidents", BROWSER)
    finally:
        os.killpg(own_redis.proc.pid, signal.SIGCONT)
    wait_for(lambda: _status(f"{base}/incidents/nope")[0] == 404, 20, "pages back after a hang")

    own_redis.stop()  # Redis is gone: connections refused
    assert "unavailable" in json.loads(answers_503(f"{base}/incidents/nope"))["error"]
    assert "Redis unavailable" in answers_503(f"{base}/incidents", BROWSER)
    restarted = start_redis(own_redis.port)
    try:
        wait_for(lambda: _status(f"{base}/incidents")[0] == 200, 20, "pages back after Redis")
    finally:
        restarted.stop()
