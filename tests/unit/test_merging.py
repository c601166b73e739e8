"""Merging hand-built incidents: shared causes, burst fragments, what the survivor keeps."""

from __future__ import annotations

from pipeline.domain.correlate.compaction import compact
from pipeline.domain.correlate.merging import absorb, shares_cause
from pipeline.domain.correlate.state import Book, IncidentState, members_in_all
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.schemas import AlertStatus, EventType, IncidentStatus, Severity
from tests.unit.correlate_parts import T0, TOPO, Parts, add_member, at, make_alert, new_state

GRAPH = GraphIndex(TOPO, 2)


def with_root(iid: str, root: str | None) -> IncidentState:
    st = new_state(iid)
    st.inc.root_cause = root
    return st


def test_shares_cause() -> None:
    assert shares_cause(GRAPH, with_root("a", "db"), with_root("b", "db"))
    # payment calls db: it is in db's blast radius, either way round
    assert shares_cause(GRAPH, with_root("a", "db"), with_root("b", "payment"))
    assert shares_cause(GRAPH, with_root("a", "payment"), with_root("b", "db"))
    assert not shares_cause(GRAPH, with_root("a", "cart"), with_root("b", "payment"))
    assert not shares_cause(GRAPH, with_root("a", "db"), with_root("b", None))
    assert not shares_cause(GRAPH, with_root("a", "db"), with_root("b", "batch-job"))
    assert shares_cause(GRAPH, with_root("a", "batch-job"), with_root("b", "batch-job"))


def two_incidents() -> tuple[IncidentState, IncidentState]:
    target = new_state("inc-t")
    add_member(target, "db", 0, kind="saturation", sev="warning", labels=("host=h1",))
    add_member(target, "payment", 10, kind="latency", sev="warning", resolved_dt=30)
    src = new_state("inc-s", 5)
    add_member(src, "cart", 5, kind="error", sev="critical", labels=("host=h2",))
    add_member(src, "db", -20, kind="error", sev="info", fp="fp-db-2")
    add_member(src, "payment", 40, kind="latency", sev="warning")  # same series as target's
    return target, src


def test_absorb_appends_members_and_folds_in_what_derives_from_them() -> None:
    target, src = two_incidents()
    src_members = list(src.members)
    absorb(target, src)
    inc = target.inc
    assert [m.service for m in target.members] == ["db", "payment", "cart", "db", "payment"]
    assert [m.ref for m in target.members] == [0, 1, 2, 3, 4]
    assert [r.service for r in inc.alerts] == ["db", "payment", "cart", "db", "payment"]
    assert inc.alert_ids == [r.id for r in inc.alerts]
    assert target.firing == {
        "fp-db-saturation": 0,
        "fp-cart-error": 2,
        "fp-db-2": 3,
        "fp-payment-latency": 4,
    }
    assert target.fp_last == {
        "fp-db-saturation": 0,
        "fp-payment-latency": 4,
        "fp-cart-error": 2,
        "fp-db-2": 3,
    }
    assert target.fires["fp-payment-latency"] == [T0 + 10, T0 + 40]
    assert target.evidence == {
        "db": ["error", "saturation"],
        "payment": ["latency"],
        "cart": ["error"],
    }
    assert target.first_seen["db"] == T0 - 20
    assert target.labels == ["host=h1", "host=h2"]
    assert (target.first_t, target.last_t) == (T0 - 20, T0 + 40)
    assert inc.severity is Severity.critical
    assert target.merged_from == ["inc-s"]
    assert inc.services == ["cart", "db", "payment"]
    assert src.members == src_members and len(src.inc.alerts) == 3  # src is left as it was


def test_absorb_reopens_a_resolved_target_only_for_firing_alerts() -> None:
    target, src = two_incidents()
    target.inc.status = IncidentStatus.resolved
    target.resolved_t = T0 + 100
    target.inc.resolved_at = at(100)
    absorb(target, src)
    assert target.inc.status is IncidentStatus.open
    assert target.resolved_t is None and target.inc.resolved_at is None

    target, src = two_incidents()
    target.inc.status = IncidentStatus.resolved
    src.firing.clear()
    absorb(target, src)
    assert target.inc.status is IncidentStatus.resolved


def test_merge_moves_everything_and_closes_the_absorbed_incident() -> None:
    p = Parts(undirected_burst_s=0)
    target, src = (p.track(st) for st in two_incidents())
    events = p.merger.merge(target, src, at(50), "same root cause db")
    assert [(e.type, e.incident.id) for e in events] == [
        (EventType.merged, "inc-s"),
        (EventType.merged, "inc-t"),
    ]
    assert events[0].detail == "merged inc-s into inc-t: same root cause db"
    sinc, tinc = src.inc, target.inc
    assert "inc-s" not in p.book.states and p.book.states["inc-t"] is target
    assert sinc.merged_into == "inc-t" and sinc.status is IncidentStatus.resolved
    assert sinc.alerts == [] and sinc.alert_ids == []
    assert sinc.explanation == "Merged into inc-t: same root cause db."
    assert sinc.resolved_at == at(50) == sinc.updated_at == tinc.updated_at
    assert set(p.book.series.values()) == {"inc-t"}
    assert len(tinc.alert_ids) == 5 and tinc.root_cause is not None
    # the survivor is indexed under the absorbed incident's services and labels too
    related = p.index.matches(make_alert("cart", 60), "cart", T0 + 60)
    assert [m[1] for m in related] == ["inc-t"]
    assert p.index.matches(make_alert("x", 60, labels={"host": "h2"}), "x", T0 + 60)
    assert not src.indexed
    # a critical member pages with the default gates
    assert tinc.page and target.gate


def test_merge_into_a_resolved_target_without_firing_alerts_keeps_it_closed() -> None:
    p = Parts()
    target, src = two_incidents()
    src.firing.clear()
    target.inc.status = IncidentStatus.resolved
    target.resolved_t = T0 + 100
    p.track(target)
    p.track(src)
    p.merger.merge(target, src, at(120), "merged by someone")
    assert target.inc.status is IncidentStatus.resolved and not target.indexed
    assert target.inc.alerts[2].status is AlertStatus.firing  # refs are moved as they are


def test_merge_shared_merges_burst_fragments_into_the_older_incident() -> None:
    p = Parts(burst_merge_s=60.0, undirected_burst_s=0)
    older = new_state("inc-old", 0)
    add_member(older, "checkout", 0, kind="latency")
    younger = new_state("inc-young", 30)
    add_member(younger, "cart", 30, kind="error")
    p.track(older)
    p.track(younger)
    events = p.merger.merge_shared(younger, ["inc-old"], at(70))
    assert [e.incident.id for e in events] == ["inc-young", "inc-old"]
    assert "opened in the same burst and linked by a later alert" in events[0].detail
    assert list(p.book.states) == ["inc-old"]


def test_merge_shared_needs_a_young_fragment_or_a_shared_cause() -> None:
    p = Parts(burst_merge_s=60.0)
    a = new_state("inc-a", 0)
    add_member(a, "checkout", 0, kind="latency")
    b = new_state("inc-b", 30)
    add_member(b, "cart", 30, kind="error")
    resolved = new_state("inc-r", 0, status=IncidentStatus.resolved)
    add_member(resolved, "db", 0, kind="saturation")
    for st in (a, b, resolved):
        p.track(st)
    a.inc.root_cause, b.inc.root_cause = "checkout", "cart"
    assert p.merger.merge_shared(b, ["inc-a", "inc-b", "inc-r", "inc-gone"], at(91)) == []
    b.inc.root_cause = "payment"  # checkout calls payment: in payment's blast radius
    events = p.merger.merge_shared(b, ["inc-a"], at(91))
    assert events[0].detail == "merged inc-b into inc-a: same root cause checkout"
    assert list(p.book.states) == ["inc-a", "inc-r"]


def test_absorb_adds_up_the_counts_the_tally_and_the_forgotten_members() -> None:
    target, src = two_incidents()
    target.sev_n, src.sev_n = [0, 2, 0, 0], [1, 1, 0, 1]
    compact(src, Book(), 2)  # src keeps 1 of 3: all firing, the two oldest go
    assert src.archive is not None and src.archive.count == 2
    absorb(target, src)
    inc = target.inc
    assert inc.alert_count == 5 and members_in_all(target) == 5 and len(target.members) == 3
    assert target.sev_n == [1, 3, 0, 1]
    assert target.archive is not None and target.archive.count == 2
    assert {(c.service, c.name): (c.count, c.firing) for c in inc.alert_counts} == {
        ("db", "saturation-alert"): (1, 1),
        ("payment", "latency-alert"): (2, 1),
        ("cart", "error-alert"): (1, 0),  # forgotten: counted, no longer firing
        ("db", "error-alert"): (1, 0),
    }
    # a resolved member stays resolved in the survivor
    target, src = two_incidents()
    src.members[0].rt = T0 + 6
    absorb(target, src)
    assert target.members[2].rt == T0 + 6


def test_absorb_keeps_at_most_max_labels() -> None:
    target, src = two_incidents()
    absorb(target, src, max_labels=1)
    assert target.labels == ["host=h1"]


def test_a_merge_past_max_members_compacts_the_survivor() -> None:
    p = Parts(undirected_burst_s=0, max_members=4)
    target, src = (p.track(st) for st in two_incidents())
    p.merger.merge(target, src, at(50), "same root cause db")
    tinc = target.inc
    assert len(target.members) == 2 and tinc.alert_count == 5
    assert sum(c.count for c in tinc.alert_counts) == 5
    # the series forgotten with the members are out of the book
    assert set(p.book.series) == set(target.fp_last)
    assert src.inc.alert_count == 0 and src.inc.alert_counts == []
