"""Insights maintained from the topics: a worker on the real broker and Redis correlates a
storm, responders' feedback arrives on ``feedback``, and the worker's insights (fed from
``incidents`` and ``feedback``, checkpointed to Redis) show the noisy rule, the recurring
incident and the acknowledgement times in ``/metrics`` and ``/insights``; after a SIGKILL the
restarted worker resumes from the checkpoint without counting anything twice; and
``stormwatch report --since`` builds the same from the incident records in Redis."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from pipeline.app.insights_feed import CHECKPOINT
from pipeline.app.localstack import free_port
from pipeline.domain.insights import checkpoint as ckpt
from pipeline.domain.schemas import EventType, IncidentEvent
from tests.integration.conftest import ROOT, Stack, collect, wait_for

decode_event = msgspec.json.Decoder(IncidentEvent).decode


def _alert(aid: str, service: str, name: str, at: datetime, status: str = "firing") -> bytes:
    return json.dumps(
        {
            "id": aid,
            "source": "test",
            "service": service,
            "name": name,
            "severity": "critical" if name == "CPUSaturation" else "warning",
            "status": status,
            "timestamp": at.isoformat(),
            "labels": {"pod": f"{service}-0"},
        }
    ).encode()


def _storm(start: datetime) -> list[bytes]:
    """Five lone blips on emailservice nobody needs, three cartservice CPU faults that show
    in its callers, then one alert a day later that moves the event clock past them all."""
    out: list[tuple[datetime, bytes]] = []
    for i in range(5):
        t = start + timedelta(minutes=30 * i)
        out.append((t, _alert(f"blip-{i}", "emailservice", "DiskBlip", t)))
        end = t + timedelta(seconds=60)
        out.append((end, _alert(f"blip-{i}-r", "emailservice", "DiskBlip", end, "resolved")))
    for i in range(3):
        t = start + timedelta(minutes=15 + 40 * i)
        for k, (svc, name) in enumerate(
            [
                ("cartservice", "CPUSaturation"),
                ("checkoutservice", "HighLatencyP99"),
                ("frontend", "HighLatencyP99"),
            ]
        ):
            at = t + timedelta(seconds=20 * k)
            out.append((at, _alert(f"cpu-{i}-{k}", svc, name, at)))
            end = at + timedelta(minutes=5)
            out.append((end, _alert(f"cpu-{i}-{k}-r", svc, name, end, "resolved")))
    later = start + timedelta(days=1)
    out.append((later, _alert("clock", "adservice", "Tick", later)))
    return [v for _, v in sorted(out, key=lambda x: x[0])]


def _get(
    stack: Stack, path: str, accept: str = "application/json", port: int | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port or stack.web_port}{path}", headers={"Accept": accept}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _metric(stack: Stack, line_start: str, port: int | None = None) -> float | None:
    body = _get(stack, "/metrics", port=port)[1].decode()
    for line in body.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_insights_from_the_topics_survive_a_restart_and_report_since_reads_the_store(
    stack: Stack, tmp_path: Path
) -> None:
    # the successor takes the insights lease 2 s after the kill (the killed worker kept it)
    env = {"STORMWATCH_INSIGHTS__REFRESH_S": "1", "STORMWATCH_INSIGHTS__LEASE_S": "2"}
    worker = stack.start_worker(extra_env=env)
    incidents = stack.consumer("incidents")
    start = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    stack.produce("alerts.raw", _storm(start), key=b"one-partition")

    def resolved(seen: list) -> bool:
        done = {
            decode_event(m.value()).incident.id
            for m in seen
            if decode_event(m.value()).type is EventType.resolved
        }
        return len(done) >= 8

    seen = collect(incidents, resolved, 120)
    closed = {}
    for m in seen:
        ev = decode_event(m.value())
        if ev.type is EventType.resolved:
            closed[ev.incident.id] = ev.incident
    cpu = [i for i in closed.values() if i.root_cause == "cartservice"]
    assert len(cpu) == 3, [(i.root_cause, i.services) for i in closed.values()]

    # responders acknowledged each CPU incident 4 minutes in and called it actionable
    feedback = []
    for inc in cpu:
        at = inc.opened_at + timedelta(minutes=4)
        feedback.append({"incident_id": inc.id, "action": "ack", "timestamp": at.isoformat()})
        feedback.append(
            {
                "incident_id": inc.id,
                "action": "verdict",
                "verdict": "actionable",
                "timestamp": (at + timedelta(minutes=10)).isoformat(),
            }
        )
    stack.produce("feedback", [json.dumps(f).encode() for f in feedback])
    store = stack.store()
    wait_for(lambda: all(len(store.feedback_for(i.id)) == 2 for i in cpu), 60, "feedback in Redis")
    # each message is stored under where it was read: the same message again (a redelivery
    # after a crash) is not appended
    sources = store.r.smembers(f"{store.prefix}fbids:{cpu[0].id}")
    assert len(sources) == 2
    first = sorted(s.decode() for s in sources)[0]
    topic, partition, offset = first.rsplit("/", 2)  # where it was read
    assert topic.endswith("feedback") and partition.isdigit() and offset.isdigit()
    assert not store.record_feedback(cpu[0].id, store.feedback_for(cpu[0].id)[0], first)
    assert len(store.feedback_for(cpu[0].id)) == 2
    # feedback on a closed incident expires with it
    ttl = store.incident_ttl
    assert 0 < store.r.ttl(f"{store.prefix}fb:{cpu[0].id}") <= ttl
    assert 0 < store.r.ttl(f"{store.prefix}fbids:{cpu[0].id}") <= ttl

    # the worker's own insights, fed from the topics (report rebuilt every second here)
    def acked_in_metrics() -> bool:
        mtta = _metric(stack, 'stormwatch_insights_mtta_seconds{dimension="root_cause",key="cart')
        return mtta is not None and mtta == 240.0

    wait_for(acked_in_metrics, 60, "MTTA of the feedback in the worker's insights metrics")
    noise = 'stormwatch_insights_rule_noise_share{alertname="DiskBlip",service="emailservice"}'
    assert _metric(stack, noise) == 1.0
    assert _metric(stack, "stormwatch_insights_noisy_rules ") == 1.0
    assert _metric(stack, "stormwatch_insights_incidents ") == 8.0

    # the state is in Redis with the offsets it covers; a killed worker's successor resumes
    # from it and reads the topics on from there: nothing counted twice, nothing lost
    def checkpointed() -> bool:
        data = store.load_checkpoint(CHECKPOINT)
        if data is None:
            return False
        insights, offsets = ckpt.load(data)
        rep = insights.report()
        return rep.incidents == 8 and rep.feedback == 6 and len(offsets) >= 2

    wait_for(checkpointed, 30, "the insights checkpoint covering the storm and its feedback")
    stack.stop_worker(worker, signal.SIGKILL)
    stack.start_worker(extra_env=env)
    wait_for(acked_in_metrics, 60, "MTTA in the restarted worker's insights metrics")
    assert _metric(stack, "stormwatch_insights_incidents ") == 8.0
    status, page = _get(stack, "/insights", accept="text/html")
    assert status == 200 and b"emailservice / DiskBlip" in page and b"<svg" in page
    status, body = _get(stack, "/insights")
    doc = json.loads(body)
    assert status == 200 and doc["recurring"][0]["root_cause"] in ("emailservice", "cartservice")

    out = tmp_path / "report"
    res = subprocess.run(
        [sys.executable, "-m", "pipeline", "report", "--since", "7d", "--output", str(out)],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    md = (out / "report.md").read_text()
    assert md.startswith("# stormwatch insights\n\n8 incidents"), md[:200]
    # exactly the 6 messages sent, though the killed worker's feedback agent may have read
    # some of them again
    assert "; 6 feedback messages" in md
    assert all(len(store.feedback_for(i.id)) == 2 for i in cpu)
    noisy = md.split("## Alert rules to fix or delete")[1].split("## Recurring")[0]
    assert "| emailservice / DiskBlip | 5 | " in noisy
    assert "cartservice" not in noisy
    recurring = md.split("## Recurring incidents")[1].split("## Time to")[0]
    assert "| cartservice | CPUSaturation | 3 |" in recurring
    assert "| emailservice | DiskBlip | 5 |" in recurring
    by_cause = md.split("### by root cause")[1].split("###")[0]
    cart = next(line for line in by_cause.splitlines() if line.startswith("| cartservice |"))
    # | key | incidents | MTTR | median | MTTA | median | acked | change |
    cells = [c.strip() for c in cart.strip("|").split("|")]
    assert cells[1] == "3" and cells[4] == "4m00s" and cells[6] == "3", cart
    assert (out / "report.html").read_text().count("<svg") >= 4


def test_one_worker_feeds_the_insights_and_a_standby_takes_over_when_it_dies(
    stack: Stack,
) -> None:
    env = {"STORMWATCH_INSIGHTS__REFRESH_S": "1", "STORMWATCH_INSIGHTS__LEASE_S": "3"}
    first = stack.start_worker(extra_env=env)
    leader = "stormwatch_insights_leader "
    wait_for(lambda: _metric(stack, leader) == 1.0, 30, "the first worker to take the lease")
    port = free_port()
    stack.start_worker(extra_env=env, web_port=str(port))
    time.sleep(3)  # a lease period: the second worker has tried and stands by
    assert _metric(stack, leader, port) == 0.0
    status, body = _get(stack, "/insights", port=port)
    assert status == 503 and b"standby" in body

    stack.produce("alerts.raw", _storm(datetime.now(UTC) - timedelta(days=2)), key=b"one")
    incidents = "stormwatch_insights_incidents "
    wait_for(lambda: _metric(stack, incidents) == 8.0, 120, "the leader's insights")
    assert _metric(stack, incidents, port) == 0.0  # the stand-by computes nothing
    store = stack.store()

    def checkpointed() -> bool:
        data = store.load_checkpoint(CHECKPOINT)
        return data is not None and ckpt.load(data)[0].report().incidents == 8

    wait_for(checkpointed, 30, "the leader's checkpoint")
    version = store.checkpoint_version(CHECKPOINT)
    # the leader dies without giving the lease up: the stand-by takes over once it lapses,
    # from the leader's document (nothing counted twice)
    stack.stop_worker(first, signal.SIGKILL)
    wait_for(lambda: _metric(stack, leader, port) == 1.0, 30, "the stand-by to take over")
    wait_for(lambda: _metric(stack, incidents, port) == 8.0, 30, "the new leader's report")
    status, _ = _get(stack, "/insights", port=port)
    assert status == 200
    assert store.checkpoint_version(CHECKPOINT) >= version
    holder = stack.redis().get(f"{stack.ns}:lease:insights")
    assert holder is not None
