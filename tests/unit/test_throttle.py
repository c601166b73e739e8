"""UpdateThrottle: updated events rate-limited per incident, every other type immediate."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.domain.schemas import EventType, Incident, IncidentEvent, IncidentStatus
from pipeline.domain.throttle import UpdateThrottle

T = datetime(2026, 11, 24, tzinfo=UTC)


def _ev(iid: str, etype: EventType = EventType.updated) -> IncidentEvent:
    inc = Incident(id=iid, status=IncidentStatus.open, opened_at=T, updated_at=T)
    return IncidentEvent(type=etype, incident=inc, at=T)


def test_first_event_passes_then_updates_wait_for_the_interval() -> None:
    th = UpdateThrottle(1.0)
    assert th.admit([_ev("a", EventType.opened)], 0.0) != []
    held = _ev("a")
    assert th.admit([held], 0.2) == []
    assert th.due(0.5) == []
    later = _ev("a")
    assert th.admit([later], 0.7) == []  # replaces the held one
    assert th.due(1.0) == [later]
    assert th.pending == 0


def test_other_types_pass_and_replace_a_held_update() -> None:
    th = UpdateThrottle(1.0)
    th.admit([_ev("a", EventType.opened)], 0.0)
    th.admit([_ev("a")], 0.1)
    resolved = _ev("a", EventType.resolved)
    assert th.admit([resolved], 0.2) == [resolved]
    assert th.due(5.0) == []


def test_incidents_are_independent_and_state_is_forgotten() -> None:
    th = UpdateThrottle(1.0)
    a, b = _ev("a"), _ev("b")
    assert th.admit([a, b], 0.0) == [a, b]
    assert th.admit([_ev("a")], 0.5) == []
    assert th.admit([_ev("b", EventType.root_cause_changed)], 0.5) != []
    assert len(th.due(1.5)) == 1
    th.due(10.0)
    assert th.admit([_ev("a")], 10.1) != []  # quiet for an interval: published at once


def test_zero_interval_never_holds_and_drain_returns_held() -> None:
    assert len(UpdateThrottle(0.0).admit([_ev("a"), _ev("a")], 0.0)) == 2
    th = UpdateThrottle(1.0)
    th.admit([_ev("a")], 0.0)
    th.admit([_ev("a")], 0.1)
    assert len(th.drain()) == 1 and th.pending == 0


def test_held_ids_and_restored_holds_are_due_at_once() -> None:
    th = UpdateThrottle(1.0)
    th.admit([_ev("a", EventType.opened)], 0.0)
    th.admit([_ev("a")], 0.1)
    assert th.held_ids() == ["a"]
    restored = UpdateThrottle(1.0)
    ev = _ev("a")
    restored.hold(ev)  # what a restarted worker does with a checkpointed held id
    assert restored.held_ids() == ["a"]
    assert restored.due(0.0) == [ev]
    assert restored.held_ids() == []
