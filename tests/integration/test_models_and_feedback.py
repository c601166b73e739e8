"""Feedback, metric anomalies and model checkpoints on the real broker and Redis."""

from __future__ import annotations

import json
import signal
import urllib.request
from datetime import UTC, datetime, timedelta

import msgspec

from pipeline.domain.schemas import Alert, AlertStatus, IncidentEvent, Severity
from pipeline.domain.scoring import AlertScorer
from tests.integration.conftest import Stack, collect, wait_for

decode_event = msgspec.json.Decoder(IncidentEvent).decode


def _metric(stack: Stack, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.web_port}/metrics") as resp:
        body = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def _samples(start: datetime, n: int, spike_at: int) -> list[bytes]:
    out = []
    for i in range(n):
        value = 50.0 + (i % 7) * 0.5 + (400.0 if i >= spike_at else 0.0)
        sample = {
            "service": "paymentservice",
            "metric": "latency_ms",
            "value": value,
            "timestamp": (start + timedelta(minutes=i)).isoformat(),
        }
        out.append(json.dumps(sample).encode())
    return out


def test_metric_anomaly_feedback_and_model_restore(stack: Stack) -> None:
    worker = stack.start_worker()
    incidents = stack.consumer("incidents")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stack.produce("metrics.raw", _samples(start, 400, spike_at=380), key=b"paymentservice")
    opened = collect(incidents, lambda seen: any(b"MetricAnomaly" in m.value() for m in seen), 90)
    ev = next(decode_event(m.value()) for m in opened if b"MetricAnomaly" in m.value())
    assert ev.incident.services == ["paymentservice"]

    # a responder acknowledges, then says it was noise: the incident shows it, the model learns
    iid = ev.incident.id
    feedback = [
        {"incident_id": iid, "action": "ack", "user": "ana", "timestamp": "2026-01-01T07:00:00Z"},
        {
            "incident_id": iid,
            "action": "verdict",
            "verdict": "noise",
            "user": "ana",
            "timestamp": "2026-01-01T07:05:00Z",
        },
    ]
    stack.produce("feedback", [json.dumps(f).encode() for f in feedback], key=iid.encode())
    acked = collect(
        incidents,
        lambda seen: any(
            decode_event(m.value()).incident.acknowledged_by == "ana"
            and decode_event(m.value()).incident.verdict == "noise"
            for m in seen
        ),
        60,
    )
    assert acked
    wait_for(lambda: _metric(stack, "stormwatch_model_updates_total") > 0, 30, "model update")
    assert len(stack.redis().lrange(f"{stack.ns}:fb:{iid}", 0, -1)) == 2

    # unknown incident -> dead letter with the reason, worker keeps going
    dlq = stack.consumer("alerts.dlq")
    stack.produce("feedback", [json.dumps({**feedback[0], "incident_id": "inc-nope"}).encode()])
    [letter] = collect(dlq, lambda seen: len(seen) >= 1, 60)
    assert dict(letter.headers())["stormwatch-error"] == b"unknown-incident"

    # the checkpoint written at shutdown restores a scorer that scores exactly the same
    stack.stop_worker(worker, signal.SIGTERM)
    saved = stack.store().load_checkpoint("models:scorer")
    assert saved
    probe = Alert(
        id="probe",
        source="prom",
        service="paymentservice",
        name="MetricAnomaly",
        severity=Severity.warning,
        status=AlertStatus.firing,
        timestamp=start + timedelta(hours=8),
    )
    before = AlertScorer.restore(saved).score(probe)
    assert AlertScorer.restore(saved).version > 0
    worker = stack.start_worker()
    stack.stop_worker(worker, signal.SIGTERM)
    after_restart = stack.store().load_checkpoint("models:scorer")
    assert after_restart is not None
    assert AlertScorer.restore(after_restart).score(probe) == before
