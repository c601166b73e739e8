"""Escalation in the worker on the real broker and Redis: an incident that pages escalates
through its team's policy, a worker killed mid-escalation is replaced by one that pages the
next step on time and exactly once, and an acknowledgement on ``feedback`` stops it. Also the
store's compare-and-set and the read-back of pages a dead worker published."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
import redis
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from pipeline.adapters.escalation_store import EscalationStore
from pipeline.adapters.oncall_store import OnCallStore
from pipeline.app.localstack import Service
from pipeline.app.page_check import PageCheck
from pipeline.app.publisher import PUBLISH_CONFIG
from pipeline.domain.oncall import parse_directory
from pipeline.domain.oncall.tracking import EscalationRecord, escalated_event
from pipeline.domain.schemas import (
    EscalationPage,
    EventType,
    Incident,
    IncidentEvent,
    IncidentStatus,
    encode,
)
from tests.integration.conftest import Stack, collect, drain

pytestmark = pytest.mark.integration
decode_event = msgspec.json.Decoder(IncidentEvent).decode
#: how late a due step may be published: the escalation timer's period (1 s), plus a
#: fresh worker's first publish (it opens its producer), on a shared, busy 2-core machine
LATE_S = 4.0
T0 = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)


def oncall(delays: tuple[int, int, int]) -> dict[str, Any]:
    """paymentservice belongs to payments; its policy pages the on-call (alice), then bob,
    then the whole team (alice again, by its schedule)."""
    d1, d2, d3 = delays
    return {
        "people": {"alice": {"name": "Alice Adams"}, "bob": {"handles": {"email": "bob@x.io"}}},
        "teams": {
            "payments": {
                "members": ["alice", "bob"],
                "schedules": ["primary"],
                "escalation_policy": "payments",
            }
        },
        "services": {"paymentservice": "payments"},
        "schedules": {
            "primary": {
                "time_zone": "UTC",
                "layers": [
                    {
                        "name": "weekly",
                        "start": "2026-01-05T09:00",
                        "shift": "1w",
                        "participants": ["alice"],
                    }
                ],
            }
        },
        "escalation_policies": {
            "payments": {
                "steps": [
                    {"delay": f"{d1}s", "targets": [{"schedule": "primary"}]},
                    {"delay": f"{d2}s", "targets": [{"person": "bob"}]},
                    {"delay": f"{d3}s", "targets": [{"team": "payments"}]},
                ]
            }
        },
    }


def load_oncall(stack: Stack, delays: tuple[int, int, int]) -> None:
    store = OnCallStore(stack.redis(), f"{stack.ns}:")
    store.replace(parse_directory(oncall(delays), "test on-call"))


def fire(stack: Stack, n: int = 2) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    alerts = [
        json.dumps(
            {
                "id": f"a-{i}",
                "source": "prometheus",
                "service": "paymentservice",
                "name": "PaymentErrors",
                "severity": "critical",
                "status": "firing",
                "timestamp": now,
                "labels": {"pod": f"payment-{i}"},
            }
        ).encode()
        for i in range(n)
    ]
    stack.produce_keyed("alerts.raw", alerts)


def escalations(messages: list[Any]) -> list[tuple[IncidentEvent, float]]:
    """The escalated events with an escalation, and when each arrived (epoch seconds)."""
    out = []
    for m in messages:
        ev = decode_event(m.value())
        if ev.escalation is not None:
            out.append((ev, m.timestamp()[1] / 1000))
    return out


def died_after_publishing(stack: Stack, page_event: IncidentEvent) -> None:
    """Put the state in Redis where a worker killed after the broker acknowledged its page,
    before it removed the page from the outbox, leaves it: the page back in the outbox,
    the dead worker's lease over. Only reading the topic tells its successor it was sent."""
    assert page_event.escalation is not None
    store = EscalationStore(stack.redis(), f"{stack.ns}:")
    rec = store.load([page_event.incident.id])[page_event.incident.id]
    dead = msgspec.structs.replace(
        rec, outbox=[page_event.escalation], lease=time.time() - 1, rev=rec.rev + 1
    )
    assert store.swap(rec.rev, dead)


def arrivals(messages: list[Any]) -> list[tuple[Any, float]]:
    """Each message with when it was produced (epoch seconds)."""
    return [(m, m.timestamp()[1] / 1000) for m in messages]


def steps(messages: list[Any]) -> list[int]:
    return [ev.escalation.step for ev, _ in escalations(messages) if ev.escalation]


def test_escalation_survives_a_restart_on_time_once_and_an_ack_stops_it(stack: Stack) -> None:
    """(One worker start fewer than two tests.) Step 1 pages the schedule's on-call; the
    worker is killed (SIGKILL, nothing committed) right after, as if between publishing the
    page and clearing its outbox; its replacement correlates the alerts again and publishes
    `opened` again, yet pages step 1 no second time and step 2 (no ack: after step 1's
    delay) exactly once and on time; an ack on `feedback` then stops the escalation: step 3
    never comes."""
    load_oncall(stack, (12, 5, 5))
    # a session timeout at its minimum, so the dead worker's partitions move soon
    worker = stack.start_worker(session_timeout_s="6", commit_interval_s="60")
    incidents = stack.consumer("incidents")
    fire(stack)
    seen = collect(incidents, lambda s: 1 in steps(s), 60)
    stack.stop_worker(worker, signal.SIGKILL)
    killed = time.monotonic()
    died_after_publishing(stack, escalations(seen)[0][0])
    stack.start_worker(session_timeout_s="6")
    print(f"replacement worker healthy {time.monotonic() - killed:.1f} s after the kill")
    seen += collect(incidents, lambda s: 2 in steps(seen + s), 60)
    (first, _), (second, arrived) = escalations(seen)[:2]
    assert first.escalation is not None and second.escalation is not None
    assert [p.person for p in first.escalation.paged] == ["alice"]
    assert "on call on primary" in first.escalation.paged[0].reason
    assert [(p.person, p.contacts) for p in second.escalation.paged] == [
        ("bob", {"email": "bob@x.io"})
    ]
    assert second.incident.id == first.incident.id and second.type.value == "escalated"
    # step 2 is due 12 s after step 1 paged, and published then if the replacement held the
    # partition by then (it publishes `opened` again when it does: about 6-8 s after the
    # kill on a quiet machine, over 20 s on a busy one), else as soon as it holds it
    assert (second.at - first.at).total_seconds() == pytest.approx(12, abs=0.01)
    took_over = [t for m, t in arrivals(seen) if decode_event(m.value()).type.value == "opened"]
    assert len(took_over) == 2, "the replacement did not correlate the alerts again"
    late = arrived - max(second.at.timestamp(), took_over[1])
    print(
        f"replacement published `opened` {took_over[1] - first.at.timestamp():.1f} s after "
        f"step 1; step 2 published {arrived - second.at.timestamp():.2f} s after it was due"
    )
    assert late < LATE_S, "step 2 was paged late"
    acked_at = datetime.now(UTC)
    ack = {
        "incident_id": first.incident.id,
        "action": "ack",
        "timestamp": acked_at.isoformat(),
        "user": "bob",
    }
    stack.produce("feedback", [json.dumps(ack).encode()], key=first.incident.id.encode())
    seen += collect(
        incidents, lambda s: any(decode_event(m.value()).incident.acknowledged_by for m in s), 30
    )
    # the next step would have been due 5 s after the last: wait until then, and a little more
    last = escalations(seen)[-1][0].at.timestamp()
    seen += drain(incidents, quiet_s=max(1.0, max(last, time.time()) + 5 + LATE_S - time.time()))
    # each step once, in order; none due after the ack (step 3 only if the replacement came
    # up so late that it was due before the ack)
    paged = steps(seen)
    assert paged[:2] == [1, 2] and paged == sorted(set(paged)), paged
    assert all(ev.at <= acked_at for ev, _ in escalations(seen)), "paged after the ack"


def test_the_store_writes_compare_and_set_with_the_due_entry(redis_service: Service) -> None:
    """Two writers that read one revision: one write lands, the other learns it lost."""
    store = EscalationStore(redis.Redis.from_url(redis_service.url), "tcas:", ended_ttl_s=60)
    rec = EscalationRecord(
        incident="inc-1",
        owner="3",
        team="payments",
        policy="payments",
        status="escalating",
        step=0,
        cycle=0,
        next_at=1000.0,
        turns=[0],
        rev=1,
    )
    assert store.swap(None, rec)
    assert not store.swap(None, rec)  # another worker started it first
    assert store.due(["3", "4"], 999.0) == {}
    assert store.due(["3", "4"], 1000.0) == {"3": ["inc-1"]}
    nxt = msgspec.structs.replace(rec, step=1, next_at=2000.0, rev=2)
    assert store.swap(1, nxt)
    assert not store.swap(1, msgspec.structs.replace(rec, step=1, rev=2))
    assert store.load(["inc-1", "inc-2"]) == {"inc-1": nxt}
    assert store.due(["3"], 1500.0) == {}
    ended = msgspec.structs.replace(nxt, status="resolved", next_at=None, rev=3)
    assert store.swap(2, ended)
    assert store.due(["3"], 10_000.0) == {}
    assert 0 < store.r.ttl("tcas:oncall:esc:inc-1") <= 60


def test_pages_a_dead_worker_published_are_read_back_from_the_topic(stack: Stack) -> None:
    """The successor of a worker that died after publishing, before clearing its outbox,
    finds those pages on the incident's partition of `incidents` (3 partitions here)."""
    topic = stack.topic("incidents")
    admin = AdminClient({"bootstrap.servers": stack.bootstrap})
    for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        future.result(30)
    since = time.time()
    producer = Producer({"bootstrap.servers": stack.bootstrap, **PUBLISH_CONFIG})
    inc = Incident(id="inc-7", status=IncidentStatus.open, opened_at=T0, updated_at=T0)
    page = EscalationPage(policy="p", team="t", step=1, steps=2, cycle=1, due_at=T0)
    for i in range(600):  # other incidents' events around ours
        other = msgspec.structs.replace(inc, id=f"inc-x{i}")
        producer.produce(topic, encode(escalated_event(other, page)), key=other.id.encode())
        if i in (100, 400):  # ours: step 1, then step 2 of the second pass
            step = page if i == 100 else msgspec.structs.replace(page, step=2, cycle=2)
            producer.produce(topic, encode(escalated_event(inc, step)), key=b"inc-7")
            ordinary = IncidentEvent(type=EventType.updated, incident=inc, at=T0)
            producer.produce(topic, encode(ordinary), key=b"inc-7")
    assert producer.flush(15) == 0
    check = PageCheck({"bootstrap.servers": stack.bootstrap}, topic)
    assert check.published("inc-7", since) == {(1, 1, 1), (1, 2, 2)}
    assert check.published("inc-8", since) == set()
