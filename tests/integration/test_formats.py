"""Formats against real senders and the real worker path.

* A real Prometheus Alertmanager 0.25 (Debian ``prometheus-alertmanager``, installed with
  apt-get when missing) notifies a local listener through its webhook and its PagerDuty
  notifier (Events API v2, ``url`` pointed at the listener); each firing notification and
  its resolve normalize to one alert series.
* Binary-mode CloudEvents on Kafka (``ce_`` headers) and a Zabbix-like payload read through
  the generic mapping configured in the environment go through a worker to ``incidents``;
  a bad event goes to the dead-letter topic with its headers kept.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from confluent_kafka import Producer

from pipeline.app.localstack import free_port
from pipeline.domain.normalize import normalize_message
from pipeline.domain.schemas import DeadLetter, IncidentEvent
from tests.integration.alertmanager import start_alertmanager
from tests.integration.conftest import Stack, collect
from tests.unit.formats_helpers import SAMPLES, assert_resolve_closes

AM_CONFIG = """\
route:
  receiver: both
  group_by: ['alertname', 'service']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: both
  webhook_configs:
  - url: 'http://127.0.0.1:{port}/webhook'
    send_resolved: true
  pagerduty_configs:
  - routing_key: 'R0UT1NGKEY0000000000000000000000'
    url: 'http://127.0.0.1:{port}/v2/enqueue'
    component: '{{{{ .CommonLabels.service }}}}'
    send_resolved: true
"""

ALERT = {
    "labels": {
        "alertname": "HighErrorRate",
        "service": "cartservice",
        "severity": "critical",
        "namespace": "shop",
    },
    "annotations": {
        "summary": "5xx ratio 12% over 5m",
        "runbook_url": "https://runbooks.example.com/high-error-rate",
    },
    "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=job%3Acart%3Aerrors",
}


class Listener:
    """A local HTTP endpoint that records every request body by path."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, body))
                self.send_response(202 if self.path.startswith("/v2/") else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, path: str) -> list[Any]:
        return [json.loads(body) for p, body in self.received if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[int, Listener]]:
    listener = Listener()
    am = start_alertmanager(tmp_path, yaml.safe_load(AM_CONFIG.format(port=listener.port)))
    try:
        yield int(am.url.rsplit(":", 1)[1]), listener
    finally:
        am.stop()
        listener.close()


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _post_alert(port: int, **times: str) -> None:
    body = json.dumps([{**ALERT, **times}]).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/alerts",
        body,
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def capture_alertmanager(port: int, listener: Listener) -> dict[str, Any]:
    """Fire one alert, then resolve it; the webhook and PagerDuty notifications, by name."""
    started = datetime.now(tz=UTC) - timedelta(seconds=30)
    _post_alert(port, startsAt=started.isoformat())
    _wait(lambda: listener.bodies("/webhook") and listener.bodies("/v2/enqueue"), 30, "firing")
    _post_alert(
        port,
        startsAt=started.isoformat(),
        endsAt=(datetime.now(tz=UTC) - timedelta(seconds=1)).isoformat(),
    )

    def resolved() -> bool:
        hooks = listener.bodies("/webhook")
        pds = listener.bodies("/v2/enqueue")
        return any(h["status"] == "resolved" for h in hooks) and any(
            p["event_action"] == "resolve" for p in pds
        )

    _wait(resolved, 30, "resolved notifications")
    hooks = listener.bodies("/webhook")
    pds = listener.bodies("/v2/enqueue")
    return {
        "alertmanager-firing.json": next(h for h in hooks if h["status"] == "firing"),
        "alertmanager-resolved.json": next(h for h in hooks if h["status"] == "resolved"),
        "pagerduty-alertmanager-trigger.json": next(
            p for p in pds if p["event_action"] == "trigger"
        ),
        "pagerduty-alertmanager-resolve.json": next(
            p for p in pds if p["event_action"] == "resolve"
        ),
    }


def test_real_alertmanager_webhook_and_pagerduty_resolves_close_their_alerts(
    alertmanager: tuple[int, Listener],
) -> None:
    got = capture_alertmanager(*alertmanager)
    raw = {name: json.dumps(body).encode() for name, body in got.items()}
    [firing] = normalize_message(raw["alertmanager-firing.json"])
    [resolved] = normalize_message(raw["alertmanager-resolved.json"], fmt="alertmanager")
    assert_resolve_closes(firing, resolved)
    assert (firing.service, firing.name) == ("cartservice", "HighErrorRate")
    assert firing.annotations["runbook_url"] == ALERT["annotations"]["runbook_url"]
    assert firing.annotations["generatorURL"] == ALERT["generatorURL"]
    [trigger] = normalize_message(raw["pagerduty-alertmanager-trigger.json"])
    [resolve] = normalize_message(raw["pagerduty-alertmanager-resolve.json"], fmt="pagerduty")
    assert_resolve_closes(trigger, resolve)
    assert trigger.service == "cartservice"
    assert trigger.name == "HighErrorRate cartservice (shop critical)"  # "[FIRING:1] " cut
    assert "R0UT1NGKEY" not in json.dumps(trigger.annotations)


def _binary_event(event_id: str, **extra: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    headers = {
        "ce_specversion": "1.0",
        "ce_id": event_id,
        "ce_source": "//monitoring.example.com/checks/errors",
        "ce_type": "HighErrorRate",
        "ce_subject": "cartservice",
        "ce_time": datetime.now(tz=UTC).isoformat(),
        "ce_severity": "critical",
        "content-type": "application/json",
        **extra,
    }
    value = json.dumps({"labels": {"namespace": "shop"}, "annotations": {"summary": "5xx"}})
    return value.encode(), [(k, v.encode()) for k, v in headers.items()]


def test_worker_reads_binary_cloudevents_and_the_configured_generic_mapping(
    stack: Stack,
) -> None:
    stack.start_worker(
        extra_env={"STORMWATCH_FORMATS__GENERIC_FILE": str(SAMPLES / "generic-zabbix.yaml")}
    )
    incidents = stack.consumer("incidents")
    dlq = stack.consumer("alerts.dlq")
    producer = Producer({"bootstrap.servers": stack.bootstrap})
    good_value, good_headers = _binary_event("ce-good-1")
    bad_value, bad_headers = _binary_event("ce-bad-1", ce_specversion="0.3")
    zabbix = json.loads((SAMPLES / "generic-zabbix-problem.json").read_text())
    now = datetime.now(tz=UTC)
    zabbix.update(event_date=now.strftime("%Y.%m.%d"), event_time=now.strftime("%H:%M:%S"))
    topic = stack.topic("alerts.raw")
    producer.produce(topic, good_value, key=b"cart", headers=good_headers)
    producer.produce(topic, bad_value, key=b"cart", headers=bad_headers)
    producer.produce(topic, json.dumps(zabbix).encode(), key=b"cart")
    assert producer.flush(15) == 0

    def members(seen: list) -> set[str]:
        events = [msgspec.json.decode(m.value(), type=IncidentEvent) for m in seen]
        return {aid for ev in events for aid in ev.incident.alert_ids}

    seen = collect(incidents, lambda seen: {"ce-good-1", "zabbix-8820391"} <= members(seen), 60)
    events = [msgspec.json.decode(m.value(), type=IncidentEvent) for m in seen]
    assert {s for ev in events for s in ev.incident.services} == {"cartservice"}
    [letter] = collect(dlq, lambda seen: len(seen) >= 1, 60)
    assert letter.value() == bad_value
    headers = dict(letter.headers() or [])
    assert headers["ce_specversion"] == b"0.3" and headers["ce_id"] == b"ce-bad-1"
    info = DeadLetter.from_headers(letter.headers() or [])
    assert info.stage == "normalize" and "specversion" in info.reason
