"""On call against a real redis-server: the store, the CLI, and the worker's HTTP endpoints
(a real worker on the Tansu broker) changing ownership and overrides without a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import icalendar
import pytest
import redis
import yaml

from pipeline.adapters.oncall_store import OnCallStore
from pipeline.app.localstack import Service
from pipeline.domain.oncall import DirectoryError, OnCallConfigError, parse_directory, who
from tests.integration.conftest import ROOT, Stack

pytestmark = pytest.mark.integration
FIXTURES = ROOT / "tests" / "fixtures" / "oncall"
MONDAY = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)  # 12:00 EDT, business hours: bob


def fixture_directory() -> Any:
    path = FIXTURES / "oncall.yaml"
    return parse_directory(yaml.safe_load(path.read_text()), str(path))


@pytest.fixture
def store(redis_service: Service) -> OnCallStore:
    return OnCallStore(redis.Redis.from_url(redis_service.url), f"t{uuid.uuid4().hex[:8]}:")


def test_store_round_trip_and_run_time_changes(store: OnCallStore) -> None:
    assert store.version() == 0
    d = fixture_directory()
    store.replace(d)
    assert store.directory() == d
    v1 = store.version()
    # ownership moves at once; unknown teams are refused and nothing is written
    store.set_owner("frontend", "payments")
    assert store.directory().owner("frontend") == "payments"
    with pytest.raises(DirectoryError, match="no team 'ghosts'"):
        store.set_owner("frontend", "ghosts")
    assert store.directory().owner("frontend") == "payments"
    # overrides apply in the order they were added; bad ones are refused
    assert who(store.directory().schedule("payments-primary"), MONDAY).person == "bob"
    store.add_override(
        "payments-primary",
        {
            "id": "c1",
            "kind": "cover",
            "person": "carol",
            "start": "2026-03-09T11:00",
            "end": "2026-03-09T13:00",
        },
    )
    store.add_override(
        "payments-primary",
        {
            "id": "c2",
            "kind": "cover",
            "person": "alice",
            "start": "2026-03-09T11:30",
            "end": "2026-03-09T12:30",
        },
    )
    answer = who(store.directory().schedule("payments-primary"), MONDAY)
    assert (answer.person, answer.override) == ("alice", "c2")
    assert [o["id"] for o in store.overrides("payments-primary")] == [
        "carol-leave",
        "c1",
        "c2",
    ]
    with pytest.raises(OnCallConfigError, match="'zed' is not in people"):
        store.add_override(
            "payments-primary",
            {
                "id": "x",
                "kind": "leave",
                "person": "zed",
                "start": "2026-03-09T00:00",
                "end": "2026-03-10T00:00",
            },
        )
    with pytest.raises(DirectoryError, match="no schedule 'nope'"):
        store.add_override("nope", {"id": "x"})
    assert store.remove_override("payments-primary", "c2")
    assert not store.remove_override("payments-primary", "c2")
    assert who(store.directory().schedule("payments-primary"), MONDAY).person == "carol"
    assert store.version() > v1
    # loading again replaces everything, run-time overrides included
    store.replace(d)
    assert store.directory() == d


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "oncall", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_against_redis(redis_service: Service, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    env = {
        **os.environ,
        "STORMWATCH_REDIS__URL": redis_service.url,
        "STORMWATCH_REDIS__KEY_PREFIX": prefix,
    }
    topology = tmp_path / "topo.yaml"
    topology.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "services": [{"name": "frontend", "team": "payments"}],
                "dependencies": [],
            }
        )
    )
    done = cli(env, "load", str(FIXTURES / "oncall.yaml"), "--topology", str(topology))
    assert done.returncode == 0, done.stderr
    assert "loaded 5 people, 2 teams, 3 schedules, 3 service owners" in done.stderr
    # the topology's team field wins over the file's services
    out = cli(env, "who", "--service", "frontend", "--at", MONDAY.isoformat(), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["team"] == "payments" and doc["oncall"][0]["person"] == "bob"
    # an override from the command line takes effect at once
    added = cli(
        env,
        "override",
        "add",
        "--schedule",
        "payments-primary",
        "--kind",
        "swap",
        "--person",
        "bob",
        "--other",
        "alice",
        "--start",
        "2026-03-09T00:00",
        "--end",
        "2026-03-10T00:00",
        "--id",
        "sw1",
    )
    assert added.returncode == 0, added.stderr
    text = cli(env, "who", "--team", "payments", "--at", MONDAY.isoformat())
    assert text.stdout.startswith("payments-primary: Alice Adams (email alice@example.com")
    assert "swap bob <-> alice (sw1)" in text.stdout
    # imports go into the directory; the person feed has the imported shifts
    imported = cli(
        env,
        "import",
        str(FIXTURES / "pagerduty-schedule.json"),
        "--overrides",
        str(FIXTURES / "pagerduty-overrides.json"),
        "--store",
    )
    assert imported.returncode == 0, imported.stderr
    assert "stored schedule 'daily-engineering-rotation' (2 new people)" in imported.stderr
    feed = tmp_path / "kyler.ics"
    exported = cli(
        env,
        "export",
        "--person",
        "kyler-kuhn",
        "--from",
        "2026-03-09T00:00Z",
        "--days",
        "7",
        "--output",
        str(feed),
    )
    assert exported.returncode == 0, exported.stderr
    assert feed.read_bytes().count(b"BEGIN:VEVENT") >= 5
    # a Google Calendar export stored as a calendar layer, answered from Redis
    stored = cli(
        env,
        "import",
        str(FIXTURES / "google-sre-berlin.ics"),
        "--schedule",
        "sre-berlin",
        "--time-zone",
        "Europe/Berlin",
        "--store",
    )
    assert stored.returncode == 0, stored.stderr
    berlin = tmp_path / "berlin.ics"
    exported = cli(
        env,
        "export",
        "--schedule",
        "sre-berlin",
        "--from",
        "2026-03-02T00:00Z",
        "--days",
        "35",
        "--output",
        str(berlin),
    )
    assert exported.returncode == 0, exported.stderr
    summaries = [
        str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(berlin.read_bytes()).walk("VEVENT")
    ]
    assert summaries == [
        "On call: Dave Dorsey",
        "On call: Erin Eder",
        "On call: Dave Dorsey",
        "On call: Erin Eder",
        "On call: Carol Chen",
    ]
    # errors are one line with exit code 2
    for args, message in [
        (("who", "--team", "nope"), "no team 'nope'"),
        (("override", "remove", "nothing", "--schedule", "payments-primary"), "no override"),
        (
            (
                "override",
                "add",
                "--schedule",
                "payments-primary",
                "--kind",
                "holiday",
                "--person",
                "bob",
                "--start",
                "2026-03-09T00:00",
                "--end",
                "2026-03-10T00:00",
            ),
            "'holiday'",
        ),
        (("load", str(FIXTURES / "google-sre-berlin.ics")), "not valid YAML"),
    ]:
        bad = cli(env, *args)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    down = {**env, "STORMWATCH_REDIS__URL": "redis://127.0.0.1:1/0"}
    bad = cli(down, "who", "--team", "payments")
    assert bad.returncode == 2 and "cannot reach Redis" in bad.stderr


#: the worker's token for web writes, from a mounted-secret directory (pipeline/app/web_auth.py)
TOKEN = "oncall-bot-" + "7f3a" * 8


def http(method: str, url: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_worker_http_changes_ownership_and_overrides_without_restart(
    stack: Stack, tmp_path: Path
) -> None:
    OnCallStore(stack.redis(), f"{stack.ns}:").replace(fixture_directory())
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "oncall-bot").write_text(TOKEN + "\n")
    stack.start_worker(web_token_file=str(secret))
    base = f"http://127.0.0.1:{stack.web_port}/oncall"
    # writes need the token (401 with a challenge otherwise, nothing written); reads do not
    for token in (None, "not-the-token-" + "0" * 20):
        request = urllib.request.Request(
            f"{base}/owners/frontend",
            data=json.dumps({"team": "payments"}).encode(),
            method="PUT",
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"].startswith('Bearer realm="stormwatch"')
        assert "error" in json.loads(refused.value.read())
    assert http("DELETE", f"{base}/schedules/payments-primary/overrides/x", token=None)[0] == 401
    scraped = urllib.request.urlopen(f"http://127.0.0.1:{stack.web_port}/metrics", timeout=10)
    assert 'stormwatch_web_refused_total{kind="write",status="401"} 3.0' in scraped.read().decode()
    assert http("GET", f"{base}/owners", token=None)[1]["services"]["frontend"] == "web"
    at = MONDAY.isoformat().replace("+00:00", "Z")
    code, body = http("GET", f"{base}/who?team=payments&at={at}")
    assert code == 200, body
    first = body["oncall"][0]
    assert (first["person"], first["layer"], first["until"]) == (
        "bob",
        "business-hours",
        "2026-03-09T21:00:00Z",
    )
    assert first["contact"] == {"email": "bob@example.com"}
    # ownership: frontend moves from web to payments
    assert http("GET", f"{base}/who?service=frontend&at={at}")[1]["team"] == "web"
    assert http("PUT", f"{base}/owners/frontend", {"team": "payments"}) == (
        200,
        {"service": "frontend", "team": "payments"},
    )
    assert http("GET", f"{base}/who?service=frontend&at={at}")[1]["team"] == "payments"
    assert http("GET", f"{base}/owners")[1]["services"]["frontend"] == "payments"
    # an override posted now answers the next question
    code, created = http(
        "POST",
        f"{base}/schedules/payments-primary/overrides",
        {
            "kind": "cover",
            "person": "carol",
            "start": "2026-03-09T11:00-04:00",
            "end": "2026-03-09T13:00-04:00",
        },
    )
    assert code == 201 and created["id"].startswith("o-"), created
    now = http("GET", f"{base}/who?team=payments&at={at}")[1]["oncall"][0]
    assert (now["person"], now["source"], now["override"]) == ("carol", "override", created["id"])
    listed = http("GET", f"{base}/schedules/payments-primary/overrides")[1]["overrides"]
    assert [o["id"] for o in listed] == ["carol-leave", created["id"]]
    assert http("DELETE", f"{base}/schedules/payments-primary/overrides/{created['id']}") == (
        204,
        None,
    )
    assert http("GET", f"{base}/who?team=payments&at={at}")[1]["oncall"][0]["person"] == "bob"
    # feeds to subscribe to, built from the directory in Redis
    with urllib.request.urlopen(f"{base}/feeds/person/erin.ics?from={at}&days=7") as response:
        assert response.headers["Content-Type"].startswith("text/calendar")
        cal = icalendar.Calendar.from_ical(response.read())
    events = list(cal.walk("VEVENT"))
    assert events and all(str(e["SUMMARY"]) == "On call: Erin Eder" for e in events)
    assert http("GET", f"{base}/feeds/schedule/nope.ics")[0] == 404
    # bad requests: one-line reasons, nothing stored
    for method, path, payload, status, message in [
        ("PUT", "/owners/frontend", {"team": "ghosts"}, 404, "no team 'ghosts'"),
        ("PUT", "/owners/frontend", {"owner": "web"}, 400, "body must be"),
        ("POST", "/schedules/payments-primary/overrides", {"kind": "cover"}, 400, "needs 'person'"),
        ("POST", "/schedules/nope/overrides", {"kind": "cover"}, 404, "no schedule 'nope'"),
        ("GET", "/who?team=payments&at=soon", None, 400, "not an ISO 8601 time"),
        ("GET", "/who", None, 400, "give one of"),
        ("DELETE", "/schedules/payments-primary/overrides/none", None, 404, "no override"),
    ]:
        code, body = http(method, base + path, payload)
        assert code == status and message in body["error"], (path, code, body)
    assert len(http("GET", f"{base}/schedules/payments-primary/overrides")[1]["overrides"]) == 1
