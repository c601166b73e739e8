"""Responder recommendation in a real worker on the Tansu broker and a real redis-server: an
incident names who should respond; a resolution on ``feedback`` teaches the model, so the
next incident on that service names the resolver first; the model is checkpointed."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import yaml
from confluent_kafka import Consumer, Message

from pipeline.adapters.oncall_store import OnCallStore
from pipeline.domain.oncall import parse_directory
from pipeline.domain.oncall.recommend import Recommender
from pipeline.domain.schemas import IncidentEvent
from tests.integration.conftest import ROOT, Stack, collect, wait_for

pytestmark = pytest.mark.integration
decode_event = msgspec.json.Decoder(IncidentEvent).decode
# Monday 16:00 UTC: bob is the payments primary, dave and erin are on call for web
MONDAY = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)


def _alert(n: int, at: datetime, name: str) -> bytes:
    alert = {
        "id": f"a-{n}",
        "source": "prometheus",
        "service": "paymentservice",
        "name": name,
        "severity": "critical",
        "status": "firing",
        "timestamp": at.isoformat(),
        "annotations": {"summary": "p99 latency 2.3s"},
    }
    return json.dumps(alert).encode()


def _opened(consumer: Consumer, alert_id: str) -> IncidentEvent:
    def holds(seen: list[Message]) -> bool:
        return any(alert_id in decode_event(m.value()).incident.alert_ids for m in seen)

    seen = collect(consumer, holds, 90)
    return next(
        e for e in map(decode_event, (m.value() for m in seen)) if alert_id in e.incident.alert_ids
    )


def _responder_updates(stack: Stack) -> float:
    url = f"http://127.0.0.1:{stack.web_port}/metrics"
    with urllib.request.urlopen(url) as resp:
        body = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith('stormwatch_model_updates_total{model="responders"}')
    )


def test_a_resolution_makes_the_resolver_first_for_that_service(stack: Stack) -> None:
    path = ROOT / "tests" / "fixtures" / "oncall" / "oncall.yaml"
    oncall = OnCallStore(stack.redis(), f"{stack.ns}:")
    oncall.replace(parse_directory(yaml.safe_load(path.read_text()), str(path)))
    stack.start_worker(checkpoint_interval_s="1")
    incidents = stack.consumer("incidents")

    stack.produce_keyed("alerts.raw", [_alert(1, MONDAY, "HighLatencyP99")])
    first = _opened(incidents, "a-1").incident
    people = [r.person for r in first.responders]
    assert people[0] == "bob", first.responders  # no feedback yet: the owning team's primary
    assert set(people) <= {"bob", "dave", "erin"}  # on call then; alice and carol are not
    assert first.responders[0].team == "payments"
    assert "on call (primary) for payments" in first.responders[0].reason
    assert first.responders[0].contact == {"email": "bob@example.com"}

    resolve = {
        "incident_id": first.id,
        "action": "resolve",
        "user": "erin",
        "timestamp": (MONDAY + timedelta(minutes=30)).isoformat(),
    }
    stack.produce("feedback", [json.dumps(resolve).encode()], key=first.id.encode())
    wait_for(lambda: _responder_updates(stack) >= 1, 60, "the recommender to learn")

    later = MONDAY + timedelta(hours=3)  # erin (web nights in Sydney) is still on call
    # another alert name: the first alert's series still fires, a repeat would be deduplicated
    stack.produce_keyed("alerts.raw", [_alert(2, later, "HighErrorRate")])
    second = _opened(incidents, "a-2").incident
    assert second.id != first.id
    assert second.responders[0].person == "erin", second.responders
    assert second.responders[0].reason.startswith(
        "resolved 1 similar paymentservice incident in 30 days"
    )

    # the model is checkpointed to Redis: a restarted worker would still know
    def learned() -> bool:
        data = stack.store().load_checkpoint("models:responders")
        return data is not None and Recommender.loads(data).expertise.updates >= 1

    wait_for(learned, 30, "a responders checkpoint with what was learned")
