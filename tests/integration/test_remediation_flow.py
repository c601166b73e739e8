"""Remediation end to end on the real broker, Redis, a worker and a real supervisord: a
managed process is killed, its alert becomes an incident, the runbook restarts it (mode
``auto``, or after an approval on ``feedback``), the alert resolves and the action is
verified; the whole trail is on ``remediations``. The runbook matches on a label and the
instance is the one the alerts name, both from the incident event's ``common_labels``.
Also: a denial stops it, and a remediation process killed mid-action neither repeats nor
loses the action."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer

from pipeline.app.localstack import free_port
from tests.integration.conftest import ROOT, Stack, collect, wait_for
from tests.integration.supervisord import SLEEPER, Supervisord, start_supervisord

pytestmark = pytest.mark.integration


def alert(service: str, status: str, at: datetime, name: str = "ProcessDown") -> bytes:
    return json.dumps(
        {
            "id": f"{service}-{status}-{at.timestamp():.0f}",
            "source": "test",
            "service": service,
            "name": name,
            "severity": "critical",
            "status": status,
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            "labels": {"process": service, "env": "prod"},
            "annotations": {"summary": "$(touch /tmp/stormwatch-pwned) `reboot`"},
        }
    ).encode()


def feedback(incident_id: str, action: str, user: str) -> bytes:
    return json.dumps(
        {
            "incident_id": incident_id,
            "action": action,
            "user": user,
            "timestamp": datetime.now(UTC).isoformat(),
        }
    ).encode()


@pytest.fixture
def supervisord(tmp_path: Path) -> Iterator[Supervisord]:
    sup = start_supervisord(tmp_path, {"cartservice": SLEEPER, "emailservice": SLEEPER})
    yield sup
    sup.stop()


def setup_files(
    tmp: Path, sup: Supervisord, mode: str, steps: list[dict[str, Any]], **guards: Any
) -> dict[str, str]:
    books = tmp / "runbooks"
    books.mkdir(exist_ok=True)
    (books / "restart.yaml").write_text(
        yaml.safe_dump(
            {
                "id": "restart-crashed-process",
                "title": "Restart a crashed process",
                "mode": mode,
                "approvers": ["alice"],
                # labels: the remediation process matches on the event's common_labels
                "match": {"alert_names": ["ProcessDown"], "labels": {"env": "prod"}},
                "diagnostics": [{"id": "status", "action": "process.status"}],
                "steps": steps,
                "guards": {"min_score": 0.0, "max_share": 1.0, **guards},
            }
        )
    )
    inventory = tmp / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "services": {
                    name: {"supervisor": {"url": sup.url, "programs": [name]}}
                    for name in ("cartservice", "emailservice")
                }
            }
        )
    )
    return {
        "STORMWATCH_REMEDIATION__RUNBOOKS": str(books),
        "STORMWATCH_REMEDIATION__INVENTORY": str(inventory),
        "STORMWATCH_REMEDIATION__TICK_INTERVAL_S": "0.2",
    }


def start_remediation(stack: Stack, extra: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    env = {
        **stack.worker_env(),
        "STORMWATCH_REMEDIATION__METRICS_PORT": str(free_port()),
        **extra,
        "STORMWATCH_LOG_LEVEL": "info",
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "remediation", "run"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack.workers.append(proc)
    return proc


class Trail:
    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.records: list[dict[str, Any]] = []

    def wait(self, pred: Any, timeout: float = 60) -> dict[str, Any]:
        def until(_: Any) -> bool:
            return any(pred(r) for r in self.records)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.records if pred(r)]
            if found:
                return found[0]
            msg = self.consumer.poll(0.2)
            if msg is not None and not msg.error():
                self.records.append(json.loads(msg.value()))
        kinds = [(r["kind"], r.get("guard")) for r in self.records]
        raise AssertionError(f"no such remediation record after {timeout:.0f} s; seen {kinds}")

    def kinds(self, incident_id: str) -> list[str]:
        return [r["kind"] for r in self.records if r["incident_id"] == incident_id]


def test_auto_restart_verified_and_on_the_topic(
    stack: Stack, supervisord: Supervisord, tmp_path: Path
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)  # alerts are fresh: see max_event_age_s
    files = setup_files(
        tmp_path,
        supervisord,
        "auto",
        # the instance named by the alerts' ``process`` label, as the incident event carries it
        [{"id": "restart", "action": "process.restart", "select": "alerting", "verify_s": 60}],
    )
    metrics_port = free_port()
    files["STORMWATCH_REMEDIATION__METRICS_PORT"] = str(metrics_port)
    stack.start_worker(extra_env=files)  # the worker attaches the runbook to the events
    start_remediation(stack, files, tmp_path / "remediation.log")
    trail = Trail(stack.consumer("remediations"))
    incidents = stack.consumer("incidents")
    supervisord.kill("cartservice")
    stack.produce("alerts.raw", [alert("cartservice", "firing", t0)])
    executed = trail.wait(lambda r: r["kind"] == "executed", 90)
    assert executed["instances"] == ["cartservice"] and executed["ok"] is True
    assert supervisord.info("cartservice")["statename"] == "RUNNING"
    inc = executed["incident_id"]
    stack.produce("alerts.raw", [alert("cartservice", "resolved", t0 + timedelta(seconds=20))])
    trail.wait(lambda r: r["kind"] == "verified" and r["incident_id"] == inc, 90)
    assert trail.kinds(inc) == ["proposed", "diagnostic", "dry_run", "executed", "verified"]
    assert not Path("/tmp/stormwatch-pwned").exists()
    events = collect(
        incidents,
        lambda ms: any(json.loads(m.value())["incident"]["id"] == inc for m in ms),
        30,
    )
    event = next(
        json.loads(m.value()) for m in events if json.loads(m.value())["incident"]["id"] == inc
    )
    runbook = event["incident"]["runbook"]
    assert runbook["id"] == "restart-crashed-process" and runbook["mode"] == "auto"
    assert event["incident"]["common_labels"] == {"env": "prod", "process": "cartservice"}
    assert [s["action"] for s in runbook["steps"]] == ["process.status", "process.restart"]
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", "remediation", "trail", inc],
        env={**stack.worker_env()},
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    assert [json.loads(line)["kind"] for line in out.stdout.splitlines()] == trail.kinds(inc)
    # the incident page shows the trail, the diagnostic's output included
    page_url = f"http://127.0.0.1:{stack.web_port}/incidents/{inc}"
    request = urllib.request.Request(page_url, headers={"Accept": "text/html"})
    with urllib.request.urlopen(request, timeout=10) as r:
        page = r.read().decode()
    section = page[page.index('id="remediation"') :]
    assert all(kind in section for kind in ("proposed", "diagnostic", "executed", "verified"))
    assert "cartservice: EXITED" in section
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert 'stormwatch_remediation_records_total{guard="none",kind="verified"} 1.0' in text
    # the success model learned from it, auditably: logged and stored
    model = json.loads(stack.redis().get(f"{stack.ns}:rem:model") or b"{}")
    assert ["restart-crashed-process", "cartservice", 2, 1] in model["counts"]
    logged = (tmp_path / "remediation.log").read_text()
    assert "remediation.model_update" in logged and "rate_after" in logged


def test_approve_waits_for_an_allowed_approver_and_a_denial_stops(
    stack: Stack, supervisord: Supervisord, tmp_path: Path
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)  # alerts are fresh: see max_event_age_s
    files = setup_files(
        tmp_path,
        supervisord,
        "approve",
        [
            {"id": "restart", "action": "process.restart", "select": "unhealthy", "verify_s": 60},
        ],
    )
    stack.start_worker()
    start_remediation(stack, files, tmp_path / "remediation.log")
    trail = Trail(stack.consumer("remediations"))
    supervisord.kill("cartservice")
    stack.produce("alerts.raw", [alert("cartservice", "firing", t0)])
    waiting = trail.wait(lambda r: r["kind"] == "refused" and r.get("guard") == "approval", 90)
    inc = waiting["incident_id"]
    time.sleep(2)
    assert supervisord.info("cartservice")["statename"] != "RUNNING"  # nothing ran
    stack.produce("feedback", [feedback(inc, "approve", "mallory")], key=inc.encode())
    trail.wait(
        lambda r: r["kind"] == "refused" and "mallory may not approve" in r.get("detail", "")
    )
    assert supervisord.info("cartservice")["statename"] != "RUNNING"
    stack.produce("feedback", [feedback(inc, "approve", "alice")], key=inc.encode())
    executed = trail.wait(lambda r: r["kind"] == "executed" and r["incident_id"] == inc)
    assert supervisord.info("cartservice")["statename"] == "RUNNING"
    assert trail.kinds(inc)[-2:] == ["dry_run", "executed"]
    assert [r["actor"] for r in trail.records if r["kind"] == "approved"] == ["alice"]
    assert executed["ok"] is True

    # a second service, denied: it stays down
    supervisord.kill("emailservice")
    stack.produce("alerts.raw", [alert("emailservice", "firing", t0 + timedelta(seconds=600))])
    waiting = trail.wait(
        lambda r: (
            r["kind"] == "refused" and r.get("guard") == "approval" and r["incident_id"] != inc
        )
    )
    other = waiting["incident_id"]
    stack.produce("feedback", [feedback(other, "deny", "alice")], key=other.encode())
    trail.wait(lambda r: r["kind"] == "denied" and r["incident_id"] == other)
    stack.produce("feedback", [feedback(other, "approve", "alice")], key=other.encode())
    time.sleep(3)
    assert supervisord.info("emailservice")["statename"] != "RUNNING"
    assert "executed" not in trail.kinds(other)


def test_with_approver_keys_only_a_signed_approval_runs_the_runbook(
    stack: Stack, supervisord: Supervisord, tmp_path: Path
) -> None:
    """Approver keys configured: alice's name on an unsigned approval (anyone who can write
    to feedback) is refused; ``stormwatch remediation approve`` with her key runs it."""
    t0 = datetime.now(UTC).replace(microsecond=0)
    files = setup_files(
        tmp_path,
        supervisord,
        "approve",
        [
            {"id": "restart", "action": "process.restart", "select": "unhealthy", "verify_s": 60},
        ],
    )
    keys = tmp_path / "approver-keys"
    keys.mkdir()
    (keys / "alice").write_text("k" * 40 + "\n")
    stack.start_worker()
    start_remediation(
        stack,
        {**files, "STORMWATCH_REMEDIATION__APPROVER_KEYS": str(keys)},
        tmp_path / "remediation.log",
    )
    trail = Trail(stack.consumer("remediations"))
    supervisord.kill("cartservice")
    stack.produce("alerts.raw", [alert("cartservice", "firing", t0)])
    waiting = trail.wait(lambda r: r["kind"] == "refused" and r.get("guard") == "approval", 90)
    inc = waiting["incident_id"]
    stack.produce("feedback", [feedback(inc, "approve", "alice")], key=inc.encode())
    trail.wait(lambda r: r["kind"] == "refused" and "not signed" in r.get("detail", ""))
    time.sleep(2)
    assert supervisord.info("cartservice")["statename"] != "RUNNING"
    assert "approved" not in trail.kinds(inc)

    wrong = tmp_path / "wrong-key"
    wrong.write_text("w" * 40)
    cli = [sys.executable, "-m", "pipeline", "remediation", "approve", inc, "--user", "alice"]
    env = {**os.environ, **stack.worker_env()}
    done = subprocess.run(
        [*cli, "--key-file", str(wrong)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    trail.wait(lambda r: r["kind"] == "refused" and "does not match" in r.get("detail", ""))
    assert supervisord.info("cartservice")["statename"] != "RUNNING"

    done = subprocess.run(
        [*cli, "--key-file", str(keys / "alice")], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0 and "(signed)" in done.stderr, done.stderr
    trail.wait(lambda r: r["kind"] == "executed" and r["incident_id"] == inc)
    assert supervisord.info("cartservice")["statename"] == "RUNNING"
    assert [r["actor"] for r in trail.records if r["kind"] == "approved"] == ["alice"]


def test_remediation_killed_mid_action_neither_repeats_nor_loses_it(
    stack: Stack, supervisord: Supervisord, tmp_path: Path
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)  # alerts are fresh: see max_event_age_s
    runs = tmp_path / "runs.txt"
    slow = "import sys, time; open(sys.argv[1], 'a').write('run\\n'); time.sleep(30)"
    files = setup_files(
        tmp_path,
        supervisord,
        "auto",
        [
            {
                "id": "slow-fix",
                "action": "command",
                "params": {"argv": [sys.executable, "-c", slow, str(runs)], "timeout_s": 60},
                "verify_s": 60,
            },
        ],
    )
    stack.start_worker()
    log = tmp_path / "remediation.log"
    proc = start_remediation(stack, files, log)
    trail = Trail(stack.consumer("remediations"))
    stack.produce("alerts.raw", [alert("cartservice", "firing", t0)])
    wait_for(lambda: runs.exists() and runs.read_text(), 90, "the command to start")
    os.killpg(proc.pid, signal.SIGKILL)  # mid-action: the command is still sleeping
    proc.wait()
    start_remediation(stack, files, log)
    resumed = trail.wait(lambda r: r["kind"] == "executed", 90)
    assert "not repeated" in resumed["detail"]
    inc = resumed["incident_id"]
    stack.produce("alerts.raw", [alert("cartservice", "resolved", t0 + timedelta(seconds=20))])
    trail.wait(lambda r: r["kind"] == "verified" and r["incident_id"] == inc, 90)
    assert runs.read_text() == "run\n"  # ran once
    assert trail.kinds(inc).count("executed") == 1


def test_a_flapping_service_is_stopped_by_the_breaker_and_a_person_paged(
    stack: Stack, supervisord: Supervisord, tmp_path: Path
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)  # alerts are fresh: see max_event_age_s
    files = setup_files(
        tmp_path,
        supervisord,
        "auto",
        [
            {"id": "restart", "action": "process.restart", "select": "unhealthy", "verify_s": 60},
        ],
        cooldown_s=0,  # the cooldown alone would stop it at the second (unit-tested)
    )
    files["STORMWATCH_REMEDIATION__BREAKER_MAX_PER_SERVICE"] = "2"
    stack.start_worker()
    start_remediation(stack, files, tmp_path / "remediation.log")
    trail = Trail(stack.consumer("remediations"))
    restarts = 0
    for i in range(3):  # the process dies again after every fix
        at = t0 + timedelta(seconds=900 * i)
        supervisord.kill("cartservice")
        stack.produce("alerts.raw", [alert("cartservice", "firing", at)])

        def outcomes() -> list[dict[str, Any]]:
            return [x for x in trail.records if x["kind"] in ("executed", "escalated")]

        trail.wait(lambda r, n=i: len(outcomes()) > n, 90)
        rec = outcomes()[i]
        if rec["kind"] == "executed":
            restarts += 1
            assert supervisord.info("cartservice")["statename"] == "RUNNING"
            stack.produce(
                "alerts.raw", [alert("cartservice", "resolved", at + timedelta(seconds=10))]
            )
            trail.wait(
                lambda r, inc=rec["incident_id"]: (
                    r["kind"] == "verified" and r["incident_id"] == inc
                ),
                90,
            )
    assert restarts == 2
    refused = [r for r in trail.records if r["kind"] == "refused" and r.get("guard") == "breaker"]
    assert len(refused) == 1 and refused[0]["page"] is True
    assert next(r for r in trail.records if r["kind"] == "escalated")["page"] is True
    assert supervisord.info("cartservice")["statename"] != "RUNNING"  # left to a person
