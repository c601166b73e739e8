"""Compaction on hand-built incidents: what is forgotten, in which order, and what survives."""

from __future__ import annotations

from pipeline.domain.correlate.compaction import compact
from pipeline.domain.correlate.state import Archive, IncidentState, members_in_all
from pipeline.domain.schemas import SEVERITY_RANK, Severity
from tests.unit.correlate_parts import T0, Parts, add_member, new_state


def counts(st: IncidentState) -> dict[tuple[str, str], tuple[int, int]]:
    return {(c.service, c.name): (c.count, c.firing) for c in st.inc.alert_counts}


def test_nothing_happens_within_the_bound_or_without_one() -> None:
    p = Parts()
    st = new_state("inc-1")
    for k in range(6):
        add_member(st, "db", k, fp=f"f{k}")
    p.track(st)
    assert compact(st, p.book, 6) == 0
    assert compact(st, p.book, 0) == 0
    assert len(st.members) == 6 and st.archive is None


def test_resolved_members_go_first_oldest_first_down_to_half_the_bound() -> None:
    p = Parts()
    st = new_state("inc-1")
    add_member(st, "db", 0, fp="f0")  # firing, oldest
    add_member(st, "cart", 1, fp="f1", resolved_dt=2)
    add_member(st, "cart", 3, fp="f2")
    add_member(st, "payment", 4, fp="f3", resolved_dt=5, sev="warning")
    add_member(st, "search", 6, fp="f4", resolved_dt=7)
    add_member(st, "checkout", 8, fp="f5")
    ids = list(st.inc.alert_ids)
    p.track(st)
    assert compact(st, p.book, 5) == 4  # 6 > 5: keep 5 // 2 = 2
    # the three resolved ones, then the oldest firing one
    assert st.inc.alert_ids == [ids[2], ids[5]]
    assert [m.fp for m in st.members] == ["f2", "f5"]
    assert [m.ref for m in st.members] == [0, 1]
    assert [r.id for r in st.inc.alerts] == st.inc.alert_ids
    assert st.firing == {"f2": 0, "f5": 1} and st.fp_last == {"f2": 0, "f5": 1}
    assert set(st.fires) == {"f2", "f5"}
    assert {fp for fp in p.book.series} == {"f2", "f5"}
    # the summary: every member still counted
    arch = st.archive
    assert arch is not None and arch.count == 4
    assert members_in_all(st) == st.inc.alert_count == 6
    assert arch.sev_n[SEVERITY_RANK[Severity.warning]] == 1
    assert arch.evidence == {
        "db": ["error"],
        "cart": ["error"],
        "payment": ["error"],
        "search": ["error"],
    }
    assert arch.first_t == T0 and arch.first_seen["cart"] == T0 + 1
    assert arch.counts == {
        "db": {"error-alert": 1},
        "cart": {"error-alert": 1},
        "payment": {"error-alert": 1},
        "search": {"error-alert": 1},
    }
    # counts keep every member; the forgotten firing one no longer counts as firing
    assert counts(st) == {
        ("db", "error-alert"): (1, 0),
        ("cart", "error-alert"): (2, 1),
        ("payment", "error-alert"): (1, 0),
        ("search", "error-alert"): (1, 0),
        ("checkout", "error-alert"): (1, 1),
    }
    # ranking works from the evidence, which keeps the forgotten services
    assert st.inc.services == ["cart", "checkout", "db", "payment", "search"]


def test_earlier_notifications_of_a_series_go_before_its_firing_one() -> None:
    p = Parts()
    st = new_state("inc-1")
    add_member(st, "db", 0, fp="f0", resolved_dt=1)
    add_member(st, "db", 2, fp="f0")  # the same series fired again: the tracked member
    add_member(st, "cart", 3, fp="f1")
    p.track(st)
    compact(st, p.book, 2)  # keep 1
    assert [m.fp for m in st.members] == ["f1"]
    st2 = new_state("inc-2", dt=10)
    add_member(st2, "db", 10, fp="g0", resolved_dt=11)
    add_member(st2, "db", 12, fp="g0")
    add_member(st2, "db", 13, fp="g1", resolved_dt=14)
    p.track(st2)
    compact(st2, p.book, 2)
    assert [m.fp for m in st2.members] == ["g0"]
    assert st2.firing == {"g0": 0} and st2.fp_last == {"g0": 0}
    assert p.book.series["g0"] == "inc-2" and "g1" not in p.book.series


def test_series_the_book_points_elsewhere_are_left_alone() -> None:
    p = Parts()
    st = new_state("inc-1")
    add_member(st, "db", 0, fp="moved", resolved_dt=1)
    add_member(st, "db", 2, fp="f1")
    add_member(st, "db", 3, fp="f2")
    p.track(st)
    p.book.series["moved"] = "inc-2"  # the series joined another incident since
    compact(st, p.book, 2)
    assert "moved" not in st.fp_last
    assert p.book.series["moved"] == "inc-2"


def test_a_series_firing_on_an_older_member_stays_tracked() -> None:
    # a merge can leave a series firing on the target's member while its latest member is
    # the absorbed incident's resolved one: forgetting that one keeps the series tracked
    p = Parts()
    st = new_state("inc-1")
    add_member(st, "db", 0, fp="f0")
    add_member(st, "db", 1, fp="tmp", resolved_dt=2)
    st.members[1].fp = "f0"
    del st.fp_last["tmp"]
    st.fp_last["f0"] = 1
    add_member(st, "cart", 3, fp="f1", resolved_dt=4)
    p.track(st)
    compact(st, p.book, 2)  # keep 1 of 3: the two resolved members go
    assert [m.fp for m in st.members] == ["f0"]
    assert st.firing == {"f0": 0} and st.fp_last == {"f0": 0}
    assert p.book.series == {"f0": "inc-1"}


def test_the_reopen_point_moves_with_the_members_forgotten_before_it() -> None:
    p = Parts()
    st = new_state("inc-1")
    for k in range(4):
        add_member(st, "db", k, fp=f"f{k}", resolved_dt=k + 0.5)
    st.reopen_at = 4
    add_member(st, "db", 10, fp="f0")
    add_member(st, "db", 11, fp="f9")
    p.track(st)
    compact(st, p.book, 5)  # keep 2: the four resolved ones go
    assert st.reopen_at == 0 and [m.fp for m in st.members] == ["f0", "f9"]


def test_archives_merge() -> None:
    a, b = Archive(), Archive()
    st = new_state("inc-1")
    m0 = add_member(st, "db", 0, fp="f0", sev="warning")
    m1 = add_member(st, "cart", 5, fp="f1", resolved_dt=9)
    a.add(m0, "X")
    b.add(m1, "Y")
    b.add(m0, "X")
    a.merge(b)
    assert a.count == 3 and a.sev == SEVERITY_RANK[Severity.critical]
    assert a.sev_n[SEVERITY_RANK[Severity.warning]] == 2
    assert a.counts == {"db": {"X": 2}, "cart": {"Y": 1}}
    assert a.first_t == T0 and a.last_t == T0 + 5 and a.last_change_t == T0 + 9
    assert a.evidence == {"db": ["error"], "cart": ["error"]}
