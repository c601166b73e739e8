"""The membership journal is exact: replaying its operations gives every incident's members
as the correlator holds them, through joins, merges and split reopens."""

from __future__ import annotations

import pytest

from benchmarks.synthetic import layered_graph, storm
from pipeline.domain.correlate import CorrelationSettings, Correlator
from pipeline.domain.correlate.journal import Joined, MembershipJournal, Memberships, Merged, Moved
from pipeline.domain.schemas import Incident
from tests.unit.test_correlate import T0, TOPO, alert, run


def _check(c: Correlator, seen: dict[str, Incident], members: Memberships) -> None:
    members.apply(c.take_membership())
    for iid, inc in seen.items():
        if inc.merged_into:
            assert members.of(iid) == [] and members.merged_into[iid] == inc.merged_into
        else:
            assert members.of(iid) == inc.alert_ids, iid


@pytest.mark.parametrize("services", [30, 300])
def test_the_journal_rebuilds_every_incident_of_a_storm(services: int) -> None:
    topo = layered_graph(services, seed=3)
    c = Correlator(topo)
    seen: dict[str, Incident] = {}
    members = Memberships()
    merges = 0
    for n, a in enumerate(storm(topo, 4000, seed=5)):
        c.advance(a.epoch)
        for ev in c.process(a):
            seen[ev.incident.id] = ev.incident
            merges += ev.incident.merged_into is not None
        if n % 97 == 0:
            _check(c, seen, members)
    for ev in c.advance(1e12):
        seen[ev.incident.id] = ev.incident
    _check(c, seen, members)
    assert merges, "the storm merged no incidents: the test covers less than it should"
    every = [aid for iid in seen for aid in members.of(iid)]
    assert len(every) == len(set(every)), "an alert is in two incidents"


def test_a_split_reopen_moves_members_in_the_journal() -> None:
    c = Correlator(TOPO, CorrelationSettings(reopen_window_s=300))
    members = Memberships()
    run(
        c,
        [
            alert("payment", "CPUSaturation", 0, pod="x"),
            alert("checkout", "HighLatencyP99", 10, pod="y"),
            alert("payment", "CPUSaturation", 60, status="resolved", pod="x"),
            alert("checkout", "HighLatencyP99", 60, status="resolved", pod="y"),
        ],
    )
    c.advance(T0 + 180)
    run(
        c,
        [
            alert("payment", "CPUSaturation", 200, pod="x"),
            alert("frontend", "ErrorRateHigh", 201),
            alert("checkout", "HighLatencyP99", 202, pod="y"),
        ],
    )
    ops = c.take_membership()
    assert any(isinstance(op, Moved) for op in ops)
    members.apply(ops)
    for inc in c.incidents():
        assert members.of(inc.id) == inc.alert_ids


def test_consecutive_joins_fold_and_take_empties() -> None:
    j = MembershipJournal()
    j.joined("i1", "a1")
    j.joined("i1", "a2")
    j.merged("i2", "i1")
    j.joined("i1", "a3")
    assert j.take() == [Joined("i1", ["a1", "a2"]), Merged("i2", "i1"), Joined("i1", ["a3"])]
    assert j.take() == []


def test_the_store_folds_joins_without_changing_the_membership() -> None:
    from pipeline.adapters.redis_store import _coalesced

    ops = [
        Joined("i1", ["a1"]),
        Joined("i2", ["b1"]),
        Joined("i1", ["a2"]),
        Merged("i2", "i1"),
        Joined("i1", ["a3"]),
        Moved("i1", "i3", ["a3"]),
        Joined("i3", ["c1"]),
    ]
    folded = _coalesced(ops)
    assert folded[:2] == [Joined("i1", ["a1", "a2"]), Joined("i2", ["b1"])]
    assert len(folded) == 6
    a, b = Memberships(), Memberships()
    a.apply(ops)
    b.apply(folded)
    assert a.members == b.members and a.merged_into == b.merged_into
