"""Alerts as incident members: opening, joining, flapping, resolving (hand-built incidents)."""

from __future__ import annotations

from pipeline.domain.correlate.state import incident_id
from pipeline.domain.event_view import alert_counts
from pipeline.domain.fingerprint import fingerprint
from pipeline.domain.schemas import (
    Alert,
    AlertStatus,
    EventType,
    Incident,
    IncidentStatus,
    Severity,
)
from tests.unit.correlate_parts import T0, Parts, add_member, at, make_alert, new_state


def fp(a: Alert) -> str:
    return fingerprint(a)


def test_open_starts_an_incident_named_after_its_first_alert() -> None:
    p = Parts()
    a = make_alert("db", 0, name="CPUSaturation", aid="a1", labels={"host": "h1"})
    events = p.members.open(a, fp(a), T0)
    assert [(e.type, e.detail) for e in events] == [
        (EventType.opened, "db CPUSaturation: first alert of the incident; paging gate reached")
    ]
    inc = events[0].incident
    assert inc.id == incident_id("a1") and p.book.states[inc.id].inc is inc
    assert inc.status is IncidentStatus.open and inc.opened_at == at(0)
    assert inc.alert_ids == ["a1"] and inc.services == ["db"] and inc.root_cause == "db"
    assert p.book.series[fp(a)] == inc.id
    st = p.book.states[inc.id]
    assert st.evidence == {"db": ["saturation"]} and st.labels == ["host=h1"]
    assert p.index.is_indexed(st)
    assert inc.page  # a critical alert: the default gate pages at once
    # the same first alert id sent again later gets another id
    again = p.members.open(a, fp(a), T0 + 1000)[0].incident
    assert again.id == incident_id("a1") + "-2"


def test_join_records_the_alert_and_its_evidence() -> None:
    p = Parts()
    st = p.track(new_state("inc-1"))
    add_member(st, "db", 0, kind="saturation", sev="warning")
    p.ranker.rerank(st)
    a = make_alert("payment", 30, name="HighLatencyP99", sev="warning", aid="a2")
    events = p.members.join(st, a, fp(a), T0 + 30, "why", EventType.updated)
    assert events[0].detail.startswith("payment HighLatencyP99: why")
    ref = st.inc.alerts[-1]
    assert (ref.id, ref.reason, ref.status) == ("a2", "why", AlertStatus.firing)
    m = st.members[-1]
    assert (m.service, m.kind, m.t, m.ref) == ("payment", "latency", T0 + 30, 1)
    assert st.firing[fp(a)] == st.fp_last[fp(a)] == 1 and st.fires[fp(a)] == [T0 + 30]
    assert st.evidence["payment"] == ["latency"] and st.first_seen["payment"] == T0 + 30
    assert st.inc.services == ["db", "payment"] and st.last_t == T0 + 30
    assert st.inc.updated_at == at(30)
    assert p.book.series[fp(a)] == "inc-1"


def test_severity_raise_and_gate_escalate_an_update() -> None:
    p = Parts(page_gates=(("critical", 1, 0.0),))
    st = p.track(new_state("inc-1"))
    add_member(st, "db", 0, sev="warning")
    a = make_alert("db", 10, name="Down", sev="critical")
    ev = p.members.join(st, a, fp(a), T0 + 10, "why", EventType.updated)[0]
    assert ev.type is EventType.escalated
    assert ev.detail == "db Down: why; severity raised to critical; paging gate reached"
    assert st.inc.severity is Severity.critical and st.inc.page and st.gate


def test_root_cause_change_is_the_events_type_unless_opened_or_reopened() -> None:
    for etype, expected in (
        (EventType.updated, EventType.root_cause_changed),
        (EventType.escalated, EventType.root_cause_changed),
        (EventType.reopened, EventType.reopened),
    ):
        p = Parts()
        st = p.track(new_state("inc-1"))
        add_member(st, "frontend", 0, kind="error")
        p.ranker.rerank(st)
        assert st.inc.root_cause == "frontend"
        a = make_alert("db", 5, name="CPUSaturation")
        ev = p.members.join(st, a, fp(a), T0 + 5, "why", etype)[0]
        assert st.inc.root_cause == "db"
        assert ev.type is expected and "root cause frontend -> db" in ev.detail


def test_symptoms_of_an_established_root_are_suppressed() -> None:
    p = Parts(suppress_min_score=0.0)
    st = p.track(new_state("inc-1"))
    add_member(st, "db", 0, kind="saturation")
    p.ranker.rerank(st)
    a = make_alert("frontend", 5, name="HighLatencyP99")
    p.members.join(st, a, fp(a), T0 + 5, "why", EventType.updated)
    assert st.inc.alerts[-1].suppressed


def test_a_series_moving_to_another_incident_leaves_its_old_firing_entry() -> None:
    p = Parts()
    old = p.track(new_state("inc-old"))
    a = make_alert("db", 0, name="CPUSaturation")
    p.members.join(old, a, fp(a), T0, "first", EventType.opened)
    new = p.track(new_state("inc-new", 10))
    b = make_alert("db", 10, name="CPUSaturation")
    p.members.join(new, b, fp(b), T0 + 10, "moved", EventType.updated)
    assert fp(a) not in old.firing and old.members[-1].rt == T0 + 10
    assert old.inc.alerts[-1].status is AlertStatus.resolved
    assert p.book.series[fp(a)] == "inc-new"
    assert new.fires[fp(a)] == [T0, T0 + 10]  # the series' recent fires came along


def test_fire_times_are_trimmed() -> None:
    p = Parts(flap_min_fires=2)
    st = p.track(new_state("inc-1"))
    for k in range(6):
        a = make_alert("db", k, name="CPUSaturation")
        p.members.join(st, a, fp(a), T0 + k, "again", EventType.updated)
    # kept between flap_min_fires and twice that many
    assert st.fires[fp(a)] == [T0 + 3, T0 + 4, T0 + 5]


def test_flap_reason() -> None:
    p = Parts(flap_min_fires=3, flap_window_s=600.0, max_span_s=3600.0)
    st = new_state("inc-1")
    st.fires["f"] = [T0, T0 + 100]
    assert p.members.flap_reason(st, "f", T0 + 200) == "flapping: fired 3 times within 10.0 min"
    assert p.members.flap_reason(st, "f", T0 + 650) is None  # the first fire is too old
    assert p.members.flap_reason(st, "g", T0 + 200) is None
    assert p.members.flap_reason(st, "f", T0 + 3601) is None  # past max_span_s


def test_resolve_resolves_the_series_firing_member() -> None:
    p = Parts()
    a = make_alert("db", 0, name="CPUSaturation")
    inc = p.members.open(a, fp(a), T0)[0].incident
    st = p.book.states[inc.id]
    r = make_alert("db", 50, name="CPUSaturation", status="resolved")
    assert fp(r) == fp(a)
    events = p.members.resolve(r, fp(r), T0 + 50)
    assert [(e.type, e.detail) for e in events] == [(EventType.updated, "alert db resolved")]
    assert st.firing == {} and st.members[0].rt == T0 + 50 and st.last_change_t == T0 + 50
    assert inc.alerts[0].status is AlertStatus.resolved and inc.updated_at == at(50)
    assert p.members.resolve(r, fp(r), T0 + 60) == []  # nothing firing any more
    other = make_alert("cart", 60, status="resolved")
    assert p.members.resolve(other, fp(other), T0 + 60) == []  # a series never seen


def counted(inc: Incident) -> dict[tuple[str, str], tuple[int, int]]:
    return {(c.service, c.name): (c.count, c.firing) for c in inc.alert_counts}


def test_joins_and_resolves_keep_the_counts() -> None:
    p = Parts()
    a = make_alert("db", 0, name="CPUSaturation", aid="a1")
    inc = p.members.open(a, fp(a), T0)[0].incident
    st = p.book.states[inc.id]
    for k, (svc, name) in enumerate([("db", "CPUSaturation"), ("cart", "ErrorRateHigh")]):
        b = make_alert(svc, 10 + k, name=name, labels={"pod": str(k)})
        p.members.join(st, b, fp(b), T0 + 10 + k, "why", EventType.updated)
    assert inc.alert_count == 3
    assert counted(inc) == {("db", "CPUSaturation"): (2, 2), ("cart", "ErrorRateHigh"): (1, 1)}
    r = make_alert("db", 50, name="CPUSaturation", status="resolved")
    p.members.resolve(r, fp(r), T0 + 50)
    assert counted(inc) == {("db", "CPUSaturation"): (2, 1), ("cart", "ErrorRateHigh"): (1, 1)}
    assert counted(inc) == {
        (c.service, c.name): (c.count, c.firing) for c in alert_counts(inc.alerts)
    }


def test_a_join_past_max_members_compacts_the_incident() -> None:
    p = Parts(max_members=4)
    first = make_alert("db", 0, name="CPUSaturation", aid="a0")
    inc = p.members.open(first, fp(first), T0)[0].incident
    st = p.book.states[inc.id]
    for k in range(1, 5):
        b = make_alert("cart", k, aid=f"a{k}", labels={"pod": str(k)})
        ev = p.members.join(st, b, fp(b), T0 + k, "why", EventType.updated)[0]
    # 5 > 4: down to 2, the oldest (all firing) forgotten; the event counts every member
    assert ev.incident.alert_ids == ["a3", "a4"] and len(st.members) == 2
    assert inc.alert_count == 5 and sum(c.count for c in inc.alert_counts) == 5
    assert set(p.book.series.values()) == {inc.id} and len(p.book.series) == 2
    assert inc.services == ["cart", "db"] and inc.root_cause is not None
