"""The lifecycle part (resolve, reopen, split a reopen, evict) and its scheduler, on
hand-built incidents (the correlator's own lifecycle tests are in test_correlate_lifecycle)."""

from __future__ import annotations

from pipeline.domain.correlate.compaction import compact
from pipeline.domain.correlate.lifecycle import rebuild
from pipeline.domain.correlate.schedule import Scheduler
from pipeline.domain.correlate.settings import CorrelationSettings
from pipeline.domain.correlate.state import IncidentState
from pipeline.domain.schemas import EventType, IncidentStatus, Severity
from tests.unit.correlate_parts import T0, Parts, add_member, at, new_state

SETTINGS = {
    "join_gap_s": 180.0,
    "allowed_lateness_s": 60.0,
    "max_span_s": 3600.0,
    "quiet_period_s": 120.0,
    "stale_after_s": 86_400.0,
    "reopen_window_s": 60.0,
}


def quiet_incident(p: Parts, iid: str = "inc-1") -> IncidentState:
    """db then payment fired; both resolved by T0 + 100."""
    st = new_state(iid)
    add_member(st, "db", 0, kind="saturation", resolved_dt=100)
    add_member(st, "payment", 20, kind="latency", resolved_dt=90)
    return p.track(st)


# ---------------------------------------------------------------------- scheduler


def test_next_due_of_an_open_and_a_resolved_incident() -> None:
    sch = Scheduler(CorrelationSettings(**SETTINGS))
    st = new_state("inc-1")
    add_member(st, "db", 0)
    add_member(st, "db", 50, fp="again")
    # firing and indexed: the join closes 180 + 60 s after the latest alert
    assert sch.next_due(st) == T0 + 50 + 240 + 1e-6
    st.indexed = False
    assert sch.next_due(st) == T0 + 50 + 86_400  # the firing members turn stale
    st.firing.clear()
    st.last_change_t = T0 + 70
    assert sch.next_due(st) == T0 + 70 + 120  # the quiet period ends
    st.inc.status = IncidentStatus.resolved
    assert sch.next_due(st) is None
    st.resolved_t = T0 + 190
    assert sch.next_due(st) == T0 + 190 + 60 + 1e-6  # the reopen window ends


def test_max_span_bounds_the_next_due() -> None:
    sch = Scheduler(CorrelationSettings(**{**SETTINGS, "max_span_s": 100.0}))
    st = new_state("inc-1")
    add_member(st, "db", 0)
    add_member(st, "db", 90, fp="again")
    assert sch.next_due(st) == T0 + 100 + 60 + 1e-6


def test_due_yields_due_incidents_in_order_and_keeps_later_ones() -> None:
    sch = Scheduler(CorrelationSettings(**SETTINGS))
    states: dict[str, IncidentState] = {}
    for iid, dt in (("inc-b", 10.0), ("inc-a", 0.0), ("inc-c", 500.0)):
        st = states[iid] = new_state(iid, dt)
        add_member(st, "db", dt, resolved_dt=dt)
        sch.schedule(st)
    assert not sch.is_due(T0 + 119)
    assert sch.is_due(T0 + 120)
    got = [st.inc.id for st in sch.due(T0 + 130, states)]
    assert got == ["inc-a", "inc-b"]  # yielded unscheduled: nothing left due by then
    assert [st.inc.id for st in sch.due(T0 + 130, states)] == []
    # a later due time found when the entry pops is scheduled again, not yielded
    states["inc-c"].last_change_t = T0 + 700
    assert [st.inc.id for st in sch.due(T0 + 650, states)] == []
    assert [st.inc.id for st in sch.due(T0 + 820, states)] == ["inc-c"]
    del states["inc-a"]
    sch.schedule(states["inc-b"])
    assert list(sch.due(T0 + 1e6, states)) == [states["inc-b"]]


def test_schedule_keeps_the_earliest_entry() -> None:
    sch = Scheduler(CorrelationSettings(**SETTINGS))
    st = new_state("inc-1")
    add_member(st, "db", 0, resolved_dt=0)
    st.indexed = False
    sch.schedule(st)  # due T0 + 120
    st.last_change_t = T0 - 100
    sch.schedule(st)  # earlier: supersedes
    assert [s.inc.id for s in sch.due(T0 + 20, {"inc-1": st})] == ["inc-1"]


# ---------------------------------------------------------------------- the clock


def test_quiet_incident_resolves_at_the_end_of_its_quiet_period() -> None:
    p = Parts(**SETTINGS)
    st = quiet_incident(p)
    assert p.lifecycle.advance(T0 + 219) == []
    events = p.lifecycle.advance(T0 + 221)
    assert [e.type for e in events] == [EventType.resolved]
    assert events[0].detail == "all alerts resolved and quiet for 2.0 min"
    inc = st.inc
    assert inc.status is IncidentStatus.resolved
    assert st.resolved_t == T0 + 220 and inc.resolved_at == at(220) == inc.updated_at
    assert not st.indexed and not p.index.is_indexed(st)
    assert inc.version == 1


def test_firing_incident_closes_to_joins_but_stays_open() -> None:
    p = Parts(**SETTINGS)
    st = new_state("inc-1")
    add_member(st, "db", 0)
    p.track(st)
    assert p.lifecycle.advance(T0 + 241) == []
    assert st.inc.status is IncidentStatus.open
    assert not st.indexed


def test_stale_firing_members_count_as_resolved() -> None:
    p = Parts(**{**SETTINGS, "stale_after_s": 1000.0})
    st = new_state("inc-1")
    add_member(st, "db", 0)
    p.track(st)
    assert p.lifecycle.advance(T0 + 999) == []
    events = p.lifecycle.advance(T0 + 1000)
    assert [e.type for e in events] == [EventType.resolved]
    assert st.firing == {}
    assert st.members[0].rt == st.members[0].t
    assert st.inc.alerts[0].status.value == "resolved"
    assert st.resolved_t == T0 + 120  # quiet since its last change


def test_resolved_incident_is_evicted_after_its_reopen_window() -> None:
    p = Parts(**SETTINGS)
    st = quiet_incident(p)
    p.lifecycle.advance(T0 + 221)
    assert p.lifecycle.advance(T0 + 280) == []
    assert "inc-1" in p.book.states
    p.lifecycle.advance(T0 + 281)
    assert "inc-1" not in p.book.states
    assert p.book.series == {}
    assert not st.indexed


def test_eviction_keeps_series_that_moved_to_another_incident() -> None:
    p = Parts(**SETTINGS)
    st = quiet_incident(p)
    p.book.series["fp-db-saturation"] = "inc-2"
    p.lifecycle.evict(st)
    assert p.book.series == {"fp-db-saturation": "inc-2"}


# ---------------------------------------------------------------------- reopen and split


def test_reopen_window() -> None:
    p = Parts(**SETTINGS)
    st = quiet_incident(p)
    assert not p.lifecycle.can_reopen(st, T0 + 230)  # not resolved yet
    p.lifecycle.advance(T0 + 221)
    assert p.lifecycle.can_reopen(st, T0 + 279)
    assert not p.lifecycle.can_reopen(st, T0 + 280)
    st.no_reopen = True
    assert not p.lifecycle.can_reopen(st, T0 + 230)


def test_reopen_opens_and_indexes_the_incident_provisionally() -> None:
    p = Parts(**SETTINGS)
    st = quiet_incident(p)
    p.lifecycle.advance(T0 + 221)
    st.inc.resolved_by = "someone"
    reason = p.lifecycle.reopen(st, T0 + 250)
    assert reason == "same alert fired again 30 s after the incident resolved"
    inc = st.inc
    assert inc.status is IncidentStatus.open
    assert inc.resolved_at is None and inc.resolved_by is None and st.resolved_t is None
    assert p.index.is_indexed(st)
    assert (st.reopen_t, st.reopen_at, st.reopen_prev_t) == (T0 + 250, 2, T0 + 220)


def test_is_new_burst() -> None:
    p = Parts(**{**SETTINGS, "burst_merge_s": 60.0})
    st = quiet_incident(p)
    p.lifecycle.advance(T0 + 221)
    p.lifecycle.reopen(st, T0 + 250)
    assert not p.lifecycle.is_new_burst(st, "fp-new", T0 + 260)  # nothing joined the reopen
    add_member(st, "db", 250, kind="saturation")
    assert p.lifecycle.is_new_burst(st, "fp-new", T0 + 260)
    assert not p.lifecycle.is_new_burst(st, "fp-payment-latency", T0 + 260)  # a series it had
    assert not p.lifecycle.is_new_burst(st, "fp-new", T0 + 311)  # after burst_merge_s


def test_split_reopened_moves_the_alerts_since_the_reopen_to_a_new_incident() -> None:
    p = Parts(**SETTINGS)
    st = quiet_incident(p)
    p.lifecycle.advance(T0 + 221)
    p.lifecycle.reopen(st, T0 + 250)
    add_member(st, "db", 250, kind="saturation", sev="warning")
    add_member(st, "cart", 255, kind="error", sev="warning", fp="fp-cart")
    p.book.series["fp-cart"] = "inc-1"
    event, detail, nst = p.lifecycle.split_reopened(st, at(256))
    # the old incident: back to before the reopen, resolved for good
    inc = st.inc
    assert event.type is EventType.resolved and event.incident is inc
    assert len(st.members) == len(inc.alerts) == len(inc.alert_ids) == 2
    assert inc.status is IncidentStatus.resolved and st.resolved_t == T0 + 220
    assert st.no_reopen and st.reopen_t is None and not st.indexed
    assert inc.services == ["db", "payment"]
    # the new incident: the moved alerts, opened by the recurrence
    new = nst.inc
    assert p.book.states[new.id] is nst and new.id != inc.id
    assert (
        detail
        == f"2 alerts that reopened inc-1 moved to {new.id}: a new burst began, not a recurrence"
    )
    assert [r.service for r in new.alerts] == ["db", "cart"]
    assert [m.ref for m in nst.members] == [0, 1]
    assert new.alerts[0].reason.startswith("first alert of the incident (it reopened inc-1")
    assert new.alerts[1].reason.startswith("same burst, 5 s after the first alert")
    assert (nst.first_t, nst.last_t) == (T0 + 250, T0 + 255)
    assert new.severity is Severity.warning and new.services == ["cart", "db"]
    assert new.root_cause is not None and p.index.is_indexed(nst)
    assert p.book.series["fp-cart"] == new.id == p.book.series["fp-db-saturation"]
    assert p.book.series["fp-payment-latency"] == "inc-1"
    assert new.page and nst.gate  # two warnings within 5 min: the default gate


def test_rebuild_recomputes_the_derived_fields() -> None:
    st = new_state("inc-1")
    add_member(st, "db", 30, kind="saturation", sev="warning", resolved_dt=40)
    add_member(st, "db", 10, kind="error", sev="error")
    add_member(st, "cart", 20, kind="latency", sev="info", fp="fp-db-saturation")
    st.evidence, st.first_seen, st.firing, st.fp_last = {}, {}, {}, {}
    st.pending = 5
    rebuild(st)
    assert st.evidence == {"db": ["error", "saturation"], "cart": ["latency"]}
    assert st.first_seen == {"db": T0 + 10, "cart": T0 + 20}
    assert st.fp_last == {"fp-db-saturation": 2, "fp-db-error": 1}
    assert st.firing == {"fp-db-error": 1, "fp-db-saturation": 2}
    assert (st.first_t, st.last_t, st.last_change_t) == (T0 + 10, T0 + 30, T0 + 40)
    assert st.inc.severity is Severity.error and st.inc.opened_at == at(10)
    assert st.inc.services == ["cart", "db"] and st.pending == 0


def test_rebuild_starts_from_the_forgotten_members_summary() -> None:
    p = Parts()
    st = new_state("inc-1")
    add_member(st, "search", 0, kind="latency", sev="critical", resolved_dt=5)
    add_member(st, "db", 30, kind="saturation", sev="warning")
    add_member(st, "cart", 40, kind="error", sev="warning")
    p.track(st)
    compact(st, p.book, 2)  # keep 1: the resolved search alert, then db's
    assert [m.service for m in st.members] == ["cart"]
    rebuild(st)
    assert st.evidence == {"search": ["latency"], "db": ["saturation"], "cart": ["error"]}
    assert st.first_seen == {"search": T0, "db": T0 + 30, "cart": T0 + 40}
    assert st.firing == st.fp_last == {"fp-cart-error": 0}
    assert (st.first_t, st.last_t, st.last_change_t) == (T0, T0 + 40, T0 + 40)
    assert st.inc.severity is Severity.critical and st.inc.opened_at == at(0)
    assert st.inc.alert_count == 3 and sum(st.sev_n) == 3
    assert {(c.service, c.count, c.firing) for c in st.inc.alert_counts} == {
        ("search", 1, 0),
        ("db", 1, 0),
        ("cart", 1, 1),
    }


def test_a_split_after_compaction_moves_the_members_held_and_counts_stay_exact() -> None:
    p = Parts(**SETTINGS, max_members=4)
    st = quiet_incident(p)
    add_member(st, "search", 30, kind="latency", resolved_dt=95)
    p.lifecycle.advance(T0 + 221)
    p.lifecycle.reopen(st, T0 + 250)
    assert st.reopen_at == 3
    add_member(st, "db", 250, kind="saturation", sev="warning")
    add_member(st, "cart", 252, kind="error", sev="warning", fp="fp-cart")
    p.book.series["fp-cart"] = "inc-1"
    compact(st, p.book, 4)  # 5 > 4: keep 2, the three resolved ones before the reopen go
    assert st.reopen_at == 0 and st.inc.alert_count == 5
    _, _, nst = p.lifecycle.split_reopened(st, at(256))
    # the held members since the reopen moved; the forgotten ones stay with the old incident
    assert [m.service for m in nst.members] == ["db", "cart"] and nst.inc.alert_count == 2
    assert st.members == [] and st.inc.alert_count == 3
    assert st.inc.services == ["db", "payment", "search"]
    assert (st.first_t, st.last_change_t) == (T0, T0 + 100)
    assert sum(c.count for c in st.inc.alert_counts) == 3 and sum(st.sev_n) == 3
    assert sum(c.count for c in nst.inc.alert_counts) == 2 and sum(nst.sev_n) == 2
    assert st.inc.status is IncidentStatus.resolved
