"""Applying responder feedback to hand-built incidents."""

from __future__ import annotations

from typing import Any

from pipeline.domain.correlate.state import IncidentState
from pipeline.domain.schemas import EventType, Feedback, FeedbackAction, IncidentStatus, Verdict
from tests.unit.correlate_parts import T0, Parts, add_member, at, new_state


def setup() -> tuple[Parts, IncidentState]:
    p = Parts(reopen_window_s=60.0)
    st = new_state("inc-1")
    add_member(st, "db", 0, kind="saturation")
    add_member(st, "payment", 20, kind="latency")
    return p, p.track(st)


def fb(action: FeedbackAction, dt: float, iid: str = "inc-1", **kw: Any) -> Feedback:
    return Feedback(incident_id=iid, action=action, timestamp=at(dt), **kw)


def test_feedback_for_an_incident_not_tracked_changes_nothing() -> None:
    p, _ = setup()
    assert p.feedback.apply(fb(FeedbackAction.ack, 30, iid="inc-gone", user="al")) == []


def test_ack() -> None:
    p, st = setup()
    events = p.feedback.apply(fb(FeedbackAction.ack, 30, user="alice"))
    assert [(e.type, e.detail) for e in events] == [(EventType.updated, "acknowledged by alice")]
    inc = st.inc
    assert inc.status is IncidentStatus.acknowledged
    assert (inc.acknowledged_by, inc.acknowledged_at, inc.updated_at) == ("alice", at(30), at(30))
    assert p.index.is_indexed(st)  # still takes alerts
    assert p.feedback.apply(fb(FeedbackAction.ack, 31))[0].detail == "acknowledged by ?"


def test_resolve_closes_the_incident_until_its_reopen_window_ends() -> None:
    p, st = setup()
    events = p.feedback.apply(fb(FeedbackAction.resolve, 30, user="bob"))
    assert [(e.type, e.detail) for e in events] == [(EventType.resolved, "resolved by bob")]
    inc = st.inc
    assert inc.status is IncidentStatus.resolved and not st.indexed
    assert (inc.resolved_at, inc.resolved_by, st.resolved_t) == (at(30), "bob", T0 + 30)
    assert st.firing  # the alerts themselves did not resolve
    assert p.lifecycle.can_reopen(st, T0 + 60)
    p.lifecycle.advance(T0 + 91)
    assert "inc-1" not in p.book.states


def test_resolve_before_the_latest_alert_counts_from_that_alert() -> None:
    p, st = setup()
    p.feedback.apply(fb(FeedbackAction.resolve, 5))
    assert st.inc.resolved_at == at(5) and st.resolved_t == T0 + 20


def test_ack_and_resolve_of_a_resolved_incident_change_nothing() -> None:
    p, st = setup()
    p.feedback.apply(fb(FeedbackAction.resolve, 30))
    version = st.inc.version
    assert p.feedback.apply(fb(FeedbackAction.ack, 31)) == []
    assert p.feedback.apply(fb(FeedbackAction.resolve, 32)) == []
    assert st.inc.status is IncidentStatus.resolved and st.inc.version == version


def test_verdict() -> None:
    p, st = setup()
    events = p.feedback.apply(fb(FeedbackAction.verdict, 40, verdict=Verdict.noise))
    assert [(e.type, e.detail) for e in events] == [(EventType.updated, "verdict noise")]
    assert st.inc.verdict == "noise" and st.inc.updated_at == at(40)


def test_confirmed_root_cause_ranks_first() -> None:
    p, st = setup()
    assert st.inc.root_cause == "db"
    events = p.feedback.apply(fb(FeedbackAction.root_cause, 40, root_cause="payment", user="cy"))
    assert [(e.type, e.detail) for e in events] == [
        (EventType.root_cause_changed, "root cause payment confirmed by cy")
    ]
    assert st.confirmed == "payment" and st.inc.root_cause == "payment"
    assert st.inc.root_cause_candidates[0].score == 1.0


def test_merge_folds_the_listed_incidents_into_this_one() -> None:
    p, st = setup()
    other = new_state("inc-2", 100)
    add_member(other, "search", 100, kind="error")
    p.track(other)
    merge = fb(FeedbackAction.merge, 110, user="dee", merge_with=["inc-1", "inc-gone", "inc-2"])
    events = p.feedback.apply(merge)
    assert [(e.type, e.incident.id) for e in events] == [
        (EventType.merged, "inc-2"),
        (EventType.merged, "inc-1"),
    ]
    assert events[0].detail == "merged inc-2 into inc-1: merged by dee"
    assert list(p.book.states) == ["inc-1"]
    assert st.inc.services == ["db", "payment", "search"]


def test_split_is_not_applied_here() -> None:
    p, st = setup()
    assert p.feedback.apply(fb(FeedbackAction.split_alerts, 40, alert_ids=["x"])) == []
    assert st.inc.version == 0
