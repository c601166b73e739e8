"""A multi-service storm on the real broker becomes one incident naming its root cause."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import msgspec

from pipeline.domain.schemas import Alert, AlertStatus, IncidentEvent, Severity, encode
from tests.integration.conftest import Stack, collect, drain

decode_event = msgspec.json.Decoder(IncidentEvent).decode
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

# productcatalogservice saturates; the services that call it (online-boutique topology) see
# latency and errors in the next minute
STORM = [
    ("productcatalogservice", "CPUSaturation", Severity.critical, 0),
    ("recommendationservice", "HighLatencyP99", Severity.warning, 30),
    ("checkoutservice", "HighLatencyP99", Severity.warning, 40),
    ("frontend", "HighLatencyP99", Severity.critical, 60),
    ("frontend", "ErrorRateHigh", Severity.warning, 70),
]


def _alert(i: int) -> Alert:
    service, name, severity, dt = STORM[i]
    return Alert(
        id=f"storm-{i}",
        source="integration-test",
        service=service,
        name=name,
        severity=severity,
        status=AlertStatus.firing,
        timestamp=T0 + timedelta(seconds=dt),
        labels={"alertname": name, "service": service},
    )


def test_storm_becomes_one_incident_with_root_cause_and_explanation(stack: Stack) -> None:
    stack.start_worker(stall_after_s="1")
    incidents = stack.consumer("incidents")
    # a symptom arrives first: the ranking must re-rank when the cause's own alert arrives
    order = [3, 0, 1, 4, 2]
    stack.produce_keyed("alerts.raw", [encode(_alert(i)) for i in order])
    wanted = {f"storm-{i}" for i in range(len(STORM))}

    def grouped(seen: list) -> bool:
        return any(set(decode_event(m.value()).incident.alert_ids) >= wanted for m in seen)

    messages = collect(incidents, grouped, 60)
    messages += drain(incidents, quiet_s=2)
    final: dict[str, IncidentEvent] = {}
    for m in messages:
        ev = decode_event(m.value())
        final[ev.incident.id] = ev
    live = [ev.incident for ev in final.values() if not ev.incident.merged_into]
    assert len(live) == 1, [(i.id, i.alert_ids) for i in live]
    inc = live[0]
    assert set(inc.alert_ids) == wanted
    assert inc.root_cause == "productcatalogservice"
    assert inc.root_cause_candidates[0].service == "productcatalogservice"
    assert inc.explanation.startswith("Root cause productcatalogservice")
    reasons = {ref.id: ref for ref in inc.alerts}
    for i, (service, *_rest) in enumerate(STORM):
        if service != "productcatalogservice":
            ref = reasons[f"storm-{i}"]
            assert "after the first alert" in ref.reason, ref.reason
            assert ref.suppressed, f"{service} is a symptom of productcatalogservice"
            assert service in inc.explanation.split("Suppressed as symptoms", 1)[1].split("\n")[0]
    # the record in Redis is the published state
    stored = stack.redis().get(f"{stack.ns}:inc:{inc.id}")
    assert stored is not None
    assert msgspec.json.decode(stored)["root_cause"] == "productcatalogservice"
    # caught up, so healthy: no partition counts as stalled on the real broker's watermarks
    time.sleep(1.5)
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.web_port}/healthz", timeout=5) as r:
        assert r.status == 200
        assert json.loads(r.read()) == {"status": "ok", "redis": True, "stalled": {}}
