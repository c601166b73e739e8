"""The worker's escalation runner with in-memory stand-ins for Redis and the broker: what it
starts, pages, stops and ends, and how it treats pages a dead worker left in an outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from prometheus_client import CollectorRegistry

from pipeline.app.escalations import Escalations
from pipeline.app.metrics import Metrics
from pipeline.domain.oncall import Directory, parse_directory
from pipeline.domain.oncall.tracking import LEASE_S, EscalationRecord
from pipeline.domain.schemas import (
    EventType,
    Feedback,
    FeedbackAction,
    Incident,
    IncidentEvent,
    IncidentStatus,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "oncall" / "oncall.yaml"
T0 = datetime(2026, 3, 9, 16, 0, tzinfo=UTC).timestamp()  # payments policy: 5m, 10m, 15m


class Records:
    """EscalationStore in memory (same compare-and-set contract)."""

    def __init__(self) -> None:
        self.rows: dict[str, EscalationRecord] = {}

    def load(self, ids: list[str]) -> dict[str, EscalationRecord]:
        return {i: self.rows[i] for i in ids if i in self.rows}

    def due(self, owners: list[str], now: float) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for rec in self.rows.values():
            if rec.owner in owners and rec.due is not None and rec.due <= now:
                out.setdefault(rec.owner, []).append(rec.incident)
        return out

    def swap(self, expected: int | None, rec: EscalationRecord) -> bool:
        current = self.rows.get(rec.incident)
        if (current.rev if current else None) != expected:
            return False
        self.rows[rec.incident] = rec
        return True

    def swap_many(self, writes: list[tuple[int | None, EscalationRecord]]) -> list[bool]:
        return [self.swap(e, r) for e, r in writes]

    def forget(self, owner: str, incident: str) -> None:
        pass


class OnCall:
    def __init__(self, directory: Directory) -> None:
        self.d = directory

    def version(self) -> int:
        return 1

    def directory(self) -> Directory:
        return self.d


class Retry:
    async def call(self, during: str, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


class Broker:
    def __init__(self) -> None:
        self.sent: list[IncidentEvent] = []
        self.fail = False

    async def send(self, events: list[IncidentEvent]) -> None:
        if self.fail:
            raise RuntimeError("broker away")
        self.sent.extend(events)

    def pages(self) -> list[tuple[int, int, int]]:
        return [
            (e.escalation.triggered, e.escalation.cycle, e.escalation.step)
            for e in self.sent
            if e.escalation is not None
        ]


def incident(**kw: Any) -> Incident:
    at = datetime.fromtimestamp(T0, UTC)
    fields: dict[str, Any] = {"status": IncidentStatus.open, "root_cause": "paymentservice"}
    return Incident(id="inc-1", opened_at=at, updated_at=at, **{**fields, **kw})


def event(etype: EventType = EventType.opened, **kw: Any) -> IncidentEvent:
    inc = incident(**kw)
    return IncidentEvent(type=etype, incident=inc, at=inc.opened_at)


def runner(
    records: Records | None = None, check: Any = None
) -> tuple[Escalations, Records, Broker]:
    d = parse_directory(yaml.safe_load(FIXTURE.read_text()), str(FIXTURE))
    records = records or Records()
    broker = Broker()
    live = {"inc-1": incident()}
    esc = Escalations(
        records,  # type: ignore[arg-type]
        OnCall(d),  # type: ignore[arg-type]
        lambda iid: None,
        Retry(),  # type: ignore[arg-type]
        broker.send,
        lambda owner, iid: live.get(iid),
        Metrics(CollectorRegistry()),
        check,
    )
    return esc, records, broker


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_paging_incident_starts_once_and_steps_page_when_due() -> None:
    esc, records, broker = runner()
    run(esc.observe("2", [event()], [], T0))
    assert broker.pages() == [(1, 1, 1)]
    rec = records.rows["inc-1"]
    assert rec.outbox == [] and rec.owner == "2" and rec.due == T0 + 300
    run(esc.observe("2", [event(), event(EventType.updated)], [], T0 + 1))  # replayed
    run(esc.tick(["2"], T0 + 299))
    assert broker.pages() == [(1, 1, 1)]
    run(esc.tick(["1"], T0 + 301))  # another partition's owner: not ours
    run(esc.tick(["2"], T0 + 301))
    assert broker.pages() == [(1, 1, 1), (1, 1, 2)]
    assert broker.sent[-1].at.timestamp() == T0 + 300  # at the due time


def test_no_policy_for_the_root_cause_no_escalation_and_no_store_read() -> None:
    esc, records, broker = runner()
    run(esc.observe("0", [event(root_cause="frontend")], [], T0))  # team web: no policy
    run(esc.observe("0", [event(root_cause=None)], [], T0))
    assert broker.sent == [] and records.rows == {}
    run(esc.observe("0", [event(EventType.root_cause_changed)], [], T0 + 5))  # now payments
    assert broker.pages() == [(1, 1, 1)]


def test_ack_stops_the_timeout_retriggers_and_the_resolution_ends() -> None:
    esc, records, broker = runner()
    run(esc.observe("0", [event()], [], T0))
    ack = Feedback(
        incident_id="inc-1",
        action=FeedbackAction.ack,
        timestamp=datetime.fromtimestamp(T0 + 60, UTC),
    )
    run(esc.observe("0", [], [ack], T0 + 61))
    assert records.rows["inc-1"].status == "acknowledged"
    run(esc.tick(["0"], T0 + 60 * 30))  # ack_timeout 30m after the ack at +60 s
    assert broker.pages() == [(1, 1, 1)]
    run(esc.tick(["0"], T0 + 60 * 31))
    assert broker.pages() == [(1, 1, 1), (2, 1, 1)]  # re-triggered from step 1
    resolved = event(EventType.resolved, status=IncidentStatus.resolved)
    run(esc.observe("0", [resolved], [], T0 + 60 * 32))
    assert records.rows["inc-1"].status == "resolved" and records.rows["inc-1"].due is None
    run(esc.tick(["0"], T0 + 86400))
    assert len(broker.pages()) == 2


def test_a_failed_publish_is_retried_after_the_lease() -> None:
    esc, records, broker = runner()
    broker.fail = True
    run(esc.observe("0", [event()], [], T0))
    assert broker.sent == [] and len(records.rows["inc-1"].outbox) == 1
    broker.fail = False
    run(esc.tick(["0"], T0 + LEASE_S - 1))  # our own lease still runs: nobody claims
    assert broker.sent == []
    run(esc.tick(["0"], T0 + LEASE_S))
    assert broker.pages() == [(1, 1, 1)] and records.rows["inc-1"].outbox == []


@pytest.mark.parametrize("on_topic", [True, False])
def test_pages_a_dead_worker_left_go_out_only_if_not_on_the_topic(on_topic: bool) -> None:
    asked: list[tuple[str, float]] = []

    def check(iid: str, since: float) -> set[tuple[int, int, int]]:
        asked.append((iid, since))
        return {(1, 1, 1)} if on_topic else set()

    first, records, dead = runner()
    dead.fail = True  # as if it died: the page stays in its outbox
    run(first.observe("0", [event()], [], T0))
    successor, _, broker = runner(records, check)
    run(successor.tick(["0"], T0 + LEASE_S + 1))
    assert asked == [("inc-1", T0 - 60)]  # since the outbox was written, less clock skew
    assert broker.pages() == ([] if on_topic else [(1, 1, 1)])
    assert records.rows["inc-1"].outbox == []
    run(successor.tick(["0"], T0 + 301))  # and the next step as usual
    assert broker.pages()[-1] == (1, 1, 2)


def test_a_reopened_incident_escalates_again() -> None:
    esc, records, broker = runner()
    run(esc.observe("0", [event()], [], T0))
    run(esc.observe("0", [event(EventType.resolved, status=IncidentStatus.resolved)], [], T0 + 9))
    run(esc.observe("0", [event(EventType.reopened)], [], T0 + 20))
    assert broker.pages() == [(1, 1, 1), (2, 1, 1)]
    assert msgspec.structs.asdict(records.rows["inc-1"])["status"] == "escalating"
    assert records.rows["inc-1"].next_at == T0 + 20 + timedelta(minutes=5).total_seconds()
