"""The paging gate on hand-built incidents: N-of-M rules per severity."""

from __future__ import annotations

from pipeline.domain.correlate.compaction import compact
from pipeline.domain.correlate.paging import PagingGate, count_member
from pipeline.domain.correlate.settings import CorrelationSettings
from pipeline.domain.correlate.state import Book, members_in_all
from pipeline.domain.schemas import SEVERITY_RANK, Severity
from tests.unit.correlate_parts import T0, add_member, new_state


def gate(*rules: tuple[str, int, float], lateness: float = 60.0) -> PagingGate:
    return PagingGate(CorrelationSettings(page_gates=rules, allowed_lateness_s=lateness))


def test_rules_with_n_zero_are_dropped_and_no_rule_never_pages() -> None:
    g = gate(("critical", 0, 0.0), ("info", 0, 0.0))
    assert g.gates == []
    st = new_state("inc-1")
    add_member(st, "db", 0, sev="critical")
    assert not g.reached(st, T0)


def test_whole_incident_rule_counts_members_of_at_least_the_severity() -> None:
    g = gate(("error", 2, 0.0))
    st = new_state("inc-1")
    add_member(st, "db", 0, sev="warning", fp="a")
    add_member(st, "db", 10, sev="error", fp="b")
    assert not g.reached(st, T0 + 10)
    add_member(st, "cart", 5000, sev="critical", fp="c")  # critical >= error, any age
    assert g.reached(st, T0 + 5000)


def test_windowed_rule_needs_n_alerts_within_the_window() -> None:
    g = gate(("warning", 2, 300.0))
    st = new_state("inc-1")
    add_member(st, "db", 0, sev="warning", fp="a")
    add_member(st, "db", 400, sev="warning", fp="b")
    assert not g.reached(st, T0 + 400)  # 400 s apart
    add_member(st, "db", 450, sev="info", fp="c")
    assert not g.reached(st, T0 + 450)  # info is below the rule's severity
    add_member(st, "cart", 500, sev="critical", fp="d")
    assert g.reached(st, T0 + 500)
    assert not g.reached(st, T0 + 1000)  # the window is measured back from t


def test_late_members_within_allowed_lateness_do_not_hide_older_ones() -> None:
    g = gate(("warning", 2, 300.0), lateness=60.0)
    st = new_state("inc-1")
    add_member(st, "db", 350, sev="warning", fp="a")
    add_member(st, "db", 90, sev="info", fp="b")  # 10 s before the window, arrived late
    add_member(st, "db", 400, sev="warning", fp="c")
    assert g.reached(st, T0 + 400)


def test_merged_members_out_of_order_are_all_looked_at() -> None:
    g = gate(("warning", 2, 300.0), lateness=60.0)
    st = new_state("inc-1")
    add_member(st, "db", 350, sev="warning", fp="a")
    add_member(st, "db", 0, sev="info", fp="b")  # appended by a merge, far older
    add_member(st, "db", 400, sev="warning", fp="c")
    st.merged_from.append("inc-0")
    assert g.reached(st, T0 + 400)


def test_tally_is_rebuilt_when_stale_and_kept_by_count_member() -> None:
    g = gate(("critical", 3, 0.0))
    st = new_state("inc-1")
    for k in range(2):
        add_member(st, "db", k, sev="critical", fp=f"f{k}")
    count_member(st, SEVERITY_RANK[Severity.critical])  # no valid tally yet: nothing to count
    assert st.sev_n == []
    assert not g.reached(st, T0 + 2)
    assert st.sev_n[SEVERITY_RANK[Severity.critical]] == 2
    add_member(st, "db", 2, sev="critical", fp="f2")
    count_member(st, SEVERITY_RANK[Severity.critical])
    assert sum(st.sev_n) == len(st.members)
    assert g.reached(st, T0 + 2)


def test_the_tally_counts_forgotten_members_and_windows_the_held_ones() -> None:
    g = gate(("critical", 3, 0.0), ("warning", 2, 300.0))
    st = new_state("inc-1")
    for k in range(3):
        add_member(st, "db", k, sev="critical", fp=f"c{k}", resolved_dt=k + 0.5)
    for k in range(3):
        add_member(st, "db", 1000 + 400 * k, sev="warning", fp=f"w{k}")
    compact(st, Book(), 4)  # keep 2: the three resolved criticals and the oldest warning go
    assert len(st.members) == 2 and members_in_all(st) == 6
    st.sev_n = []  # not counted yet: recounted from the summary and the members held
    assert g.reached(st, T0 + 2000)  # three criticals, all forgotten, still count
    assert st.sev_n[SEVERITY_RANK[Severity.critical]] == 3 and sum(st.sev_n) == 6
    g = gate(("warning", 2, 300.0))
    assert not g.reached(st, T0 + 1800)  # the held warnings are 400 s apart
