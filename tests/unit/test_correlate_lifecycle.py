"""Lifecycle: a recurrence reopens; a recurrence that starts a new burst becomes a new incident."""

from __future__ import annotations

from pipeline.domain.correlate import CorrelationSettings, Correlator
from pipeline.domain.schemas import EventType, IncidentStatus
from tests.unit.test_correlate import T0, TOPO, alert, run


def _resolved_storm(c: Correlator) -> str:
    run(
        c,
        [
            alert("payment", "CPUSaturation", 0, pod="x"),
            alert("checkout", "HighLatencyP99", 10, pod="y"),
            alert("payment", "CPUSaturation", 60, status="resolved", pod="x"),
            alert("checkout", "HighLatencyP99", 60, status="resolved", pod="y"),
        ],
    )
    c.advance(T0 + 60 + 120)
    (inc,) = c.incidents()
    assert inc.status is IncidentStatus.resolved
    return inc.id


def test_recurrence_of_the_same_series_reopens() -> None:
    c = Correlator(TOPO, CorrelationSettings(reopen_window_s=300))
    old = _resolved_storm(c)
    events = run(c, [alert("payment", "CPUSaturation", 200, pod="x")])
    assert [e.type for e in events] == [EventType.reopened]
    # a series the incident already had, later in the burst, stays
    events = run(c, [alert("checkout", "HighLatencyP99", 205, pod="y")])
    assert [e.type for e in events] == [EventType.updated]
    (inc,) = c.incidents()
    assert inc.id == old and inc.status is IncidentStatus.open and len(inc.alert_ids) == 4


def test_recurrence_that_starts_a_new_burst_opens_a_new_incident() -> None:
    c = Correlator(TOPO, CorrelationSettings(reopen_window_s=300))
    old = _resolved_storm(c)
    events = run(
        c,
        [
            alert("payment", "CPUSaturation", 200, pod="x"),  # reopens ...
            alert("frontend", "ErrorRateHigh", 201),  # ... but a new series joins: new burst
            alert("checkout", "HighLatencyP99", 202, pod="y"),  # old series: the new incident
        ],
    )
    types = [e.type for e in events]
    assert types[:3] == [EventType.reopened, EventType.resolved, EventType.opened], types
    incs = {i.id: i for i in c.incidents()}
    assert len(incs) == 2
    o = incs.pop(old)
    (new,) = incs.values()
    assert o.status is IncidentStatus.resolved and len(o.alert_ids) == 2
    assert new.status is IncidentStatus.open and len(new.alert_ids) == 3
    assert new.services == ["checkout", "frontend", "payment"]
    assert "new burst" in events[1].detail and new.id in events[1].detail
    assert "not a recurrence" in new.alerts[0].reason
    # the old incident never reopens again; it is evicted after its window
    c.advance(T0 + 2000)
    assert old not in {i.id for i in c.incidents()}
    # snapshot/restore keeps the split state
    c2 = Correlator.restore(TOPO, c.settings, c.snapshot())
    assert {i.id for i in c2.incidents()} == {i.id for i in c.incidents()}


def test_recurrence_related_to_an_open_incident_joins_it_instead_of_reopening() -> None:
    c = Correlator(TOPO, CorrelationSettings(reopen_window_s=300))
    old = _resolved_storm(c)
    run(c, [alert("db", "CPUSaturation", 195, pod="z")])  # a new problem starts
    events = run(c, [alert("payment", "CPUSaturation", 200, pod="x")])  # old series, related
    assert len(events) == 1 and events[0].type is not EventType.reopened
    assert events[0].incident.id != old
    assert c.get(old) is not None and c.get(old).status is IncidentStatus.resolved  # type: ignore[union-attr]


def test_callees_of_one_caller_group_in_the_same_burst_despite_a_missing_edge() -> None:
    # cart and checkout are both called by frontend; no path relates them directly within
    # the graph's direction (the call checkout -> cart may be missing from the topology)
    alerts = [alert("checkout", "HighLatencyP99", 0), alert("cart", "HighLatencyP99", 5)]
    c = Correlator(TOPO, CorrelationSettings(shared_dependency=False))
    run(c, alerts)
    (inc,) = c.incidents()
    assert "both called by frontend" in inc.alerts[1].reason
    c = Correlator(TOPO, CorrelationSettings(shared_dependency=False, undirected_burst_s=0))
    run(c, [alert("checkout", "HighLatencyP99", 0), alert("cart", "HighLatencyP99", 5)])
    assert len(c.incidents()) == 2
    # outside the burst window they stay apart
    c = Correlator(TOPO, CorrelationSettings(shared_dependency=False))
    run(c, [alert("checkout", "HighLatencyP99", 0), alert("cart", "HighLatencyP99", 120)])
    assert len(c.incidents()) == 2


def test_an_endless_storm_is_cut_into_incidents_of_bounded_span() -> None:
    seq = []
    for k in range(40):  # a related alert every 60 s for 40 min, each firing 90 s
        svc = ("payment", "checkout", "db", "cart")[k % 4]
        seq.append(alert(svc, "HighLatencyP99", k * 60.0, pod=str(k)))
        seq.append(alert(svc, "HighLatencyP99", k * 60.0 + 90, status="resolved", pod=str(k)))
    seq.sort(key=lambda a: a.epoch)
    c2 = Correlator(TOPO, CorrelationSettings(max_span_s=0))
    run(c2, seq)
    assert len(c2.incidents()) == 1  # without the cap: one incident of 40 min
    c3 = Correlator(TOPO, CorrelationSettings(max_span_s=600))
    incs: dict[str, int] = {}
    for a in seq:
        for e in c3.advance(a.epoch) + c3.process(a):
            incs[e.incident.id] = len(e.incident.alert_ids)
    assert len(incs) >= 4 and sum(incs.values()) == 40


def test_paging_gate_counts_match_a_full_recount() -> None:
    import random

    from pipeline.domain.schemas import SEVERITY_RANK, Severity

    rng = random.Random(5)
    s = CorrelationSettings(page_gates=(("critical", 40, 0.0), ("warning", 4, 120.0)))
    c = Correlator(TOPO, s)
    gates = [(SEVERITY_RANK[Severity(v)], n, w) for v, n, w in s.page_gates]

    def naive(members: list, t: float) -> bool:  # type: ignore[type-arg]
        for sev, n, w in gates:
            lo = t - w if w > 0 else float("-inf")
            if sum(1 for m in members if m.t >= lo and m.sev >= sev) >= n:
                return True
        return False

    t = 0.0
    seen = set()
    for k in range(300):
        t += rng.uniform(0, 40)
        sev = rng.choice(["info", "info", "info", "warning", "critical"])
        run(c, [alert("payment", "HighLatencyP99", t, sev=sev, pod=str(k))])
        for st in c._states.values():
            got = c._gate(st, st.last_t)
            assert got == naive(st.members, st.last_t)
            seen.add(got)
    assert seen == {True, False}
