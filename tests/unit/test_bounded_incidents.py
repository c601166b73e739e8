"""Incidents of any size in bounded memory: with a small ``max_members`` every alert is still
in exactly one incident (by the membership journal), every count adds up, nothing leaks,
grouping is unchanged while no incident outgrows the bound, and one incident absorbing
200,000 alerts keeps the correlator's memory flat."""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections import Counter

import pytest

from benchmarks.incident_memory import TOPOLOGY, single_incident_storm
from benchmarks.synthetic import layered_graph, storm
from pipeline.domain.correlate import CorrelationSettings, Correlator
from pipeline.domain.correlate.journal import Memberships
from pipeline.domain.correlate.state import members_in_all
from pipeline.domain.schemas import SEVERITY_RANK, AlertStatus
from pipeline.offline.replay import replay_alerts


def check_states(c: Correlator, members: Memberships) -> None:
    """Every tracked incident is consistent, within its bounds, and counts what the journal
    lists; every series the book tracks is one its incident tracks."""
    s = c.settings
    for iid, st in c.book.states.items():
        inc = st.inc
        if s.max_members:
            assert len(st.members) <= s.max_members
        if s.max_labels:
            assert len(st.labels) <= s.max_labels
        assert len(inc.alerts) == len(inc.alert_ids) == len(st.members)
        assert [m.ref for m in st.members] == list(range(len(st.members)))
        assert [r.id for r in inc.alerts] == inc.alert_ids
        journal = members.of(iid)
        assert inc.alert_count == members_in_all(st) == len(journal), iid
        assert set(inc.alert_ids) <= set(journal)
        # counts: what the incident forgot plus what it holds
        want: Counter[tuple[str, str]] = Counter()
        firing: Counter[tuple[str, str]] = Counter()
        if st.archive is not None:
            for svc, names in st.archive.counts.items():
                for name, n in names.items():
                    want[(svc, name)] += n
        for ref in inc.alerts:
            want[(ref.service, ref.name)] += 1
            firing[(ref.service, ref.name)] += ref.status is AlertStatus.firing
        got = {(x.service, x.name): (x.count, x.firing) for x in inc.alert_counts}
        assert got == {k: (n, firing[k]) for k, n in want.items()}, iid
        if len(st.sev_n) == len(SEVERITY_RANK):
            assert sum(st.sev_n) == inc.alert_count
        assert set(st.firing) <= set(st.fp_last)
        for fp, i in st.fp_last.items():
            assert st.members[i].fp == fp
        for fp, i in st.firing.items():
            assert st.members[i].fp == fp and st.members[i].rt is None
    for fp, iid in c.book.series.items():
        assert fp in c.book.states[iid].fp_last, "a series left in the book (a leak)"


def correlate(
    topo_services: int, events: int, seed: int, fault_every_s: float, max_members: int
) -> tuple[dict[str, frozenset[str]], dict[str, str | None], int, bool]:
    """The storm through one correlator: grouping by the journal, root causes, the largest
    incident it ever had, and whether any incident was compacted."""
    topo = layered_graph(topo_services, seed=3)
    alerts = storm(topo, events, seed=seed, fault_every_s=fault_every_s)
    c = Correlator(topo, CorrelationSettings(max_members=max_members))
    members = Memberships()
    roots: dict[str, str | None] = {}
    largest = 0
    compacted = False
    for n, a in enumerate(alerts):
        evs = c.advance(a.epoch) + c.process(a)
        for ev in evs:
            roots[ev.incident.id] = ev.incident.root_cause
            largest = max(largest, ev.incident.alert_count)
        if n % 53 == 0:
            members.apply(c.take_membership())
            check_states(c, members)
            compacted |= any(st.archive is not None for st in c.book.states.values())
    for ev in c.advance(1e12):
        roots[ev.incident.id] = ev.incident.root_cause
    members.apply(c.take_membership())
    check_states(c, members)
    groups = {iid: frozenset(ids) for iid, ids in members.members.items() if ids}
    # every firing alert in exactly one incident
    every = [aid for ids in groups.values() for aid in ids]
    assert len(every) == len(set(every)), "an alert is in two incidents"
    assert set(every) == {a.id for a in alerts if a.status is AlertStatus.firing}
    return groups, roots, largest, compacted


@pytest.mark.parametrize(
    ("services", "events", "seed", "fault_every_s", "max_members"),
    [
        (30, 4000, 5, 20.0, 50),  # one big incident after another
        (300, 4000, 5, 20.0, 50),  # merges of big incidents
        (300, 3000, 5, 300.0, 50),
        (300, 3000, 5, 300.0, 200),  # no incident outgrows the bound
    ],
)
def test_bounded_incidents_keep_every_alert_and_count(
    services: int, events: int, seed: int, fault_every_s: float, max_members: int
) -> None:
    bounded = correlate(services, events, seed, fault_every_s, max_members)
    unbounded = correlate(services, events, seed, fault_every_s, 0)
    groups, roots, _, compacted = bounded
    free_groups, free_roots, largest, _ = unbounded
    if largest <= max_members:
        assert not compacted
        assert set(groups.values()) == set(free_groups.values())
        assert {groups[i]: roots[i] for i in groups} == {
            free_groups[i]: free_roots[i] for i in free_groups
        }
    else:
        assert compacted, "the storm never outgrew the bound: the test covers less"


def test_replay_lists_every_member_whatever_the_bound() -> None:
    topo = layered_graph(30, seed=3)
    alerts = storm(topo, 3000, seed=5)
    unbounded = replay_alerts(topo, alerts, CorrelationSettings(max_members=0))
    incidents = replay_alerts(topo, alerts, CorrelationSettings(max_members=50))
    every = [aid for inc in incidents for aid in inc.alert_ids]
    assert len(every) == len(set(every))
    assert set(every) == {aid for inc in unbounded for aid in inc.alert_ids}
    for inc in incidents:
        assert inc.alert_count == len(inc.alert_ids) == sum(x.count for x in inc.alert_counts)
        assert len(inc.alerts) <= 50
    assert max(inc.alert_count for inc in incidents) > 50


def _blocks() -> int:
    gc.collect()
    return sys.getallocatedblocks()


def test_one_incident_absorbing_200k_alerts_keeps_flat_memory() -> None:
    """The default bound (10,000) over 200,000 alerts: sizes stay bounded and the live
    allocated blocks (what tracemalloc would trace, free to read) stay flat from 50,000 on."""
    c = Correlator(TOPOLOGY, CorrelationSettings())
    s = c.settings
    blocks: dict[int, int] = {}
    joined = 0
    for events, a in enumerate(single_incident_storm(200_000), 1):
        c.process(a)
        if events % 1000 == 0:
            c.take_membership()  # (the worker writes the journal to Redis)
            c.advance(a.epoch)
        if a.status is AlertStatus.firing:
            joined += 1
            if joined % 50_000 == 0:
                [st] = c.book.states.values()
                assert st.inc.alert_count == joined
                assert len(st.members) <= s.max_members and len(st.inc.alerts) <= s.max_members
                assert len(st.inc.alert_ids) <= s.max_members
                for per_series in (st.firing, st.fp_last, st.fires):
                    assert len(per_series) <= s.max_members
                assert len(c.book.series) <= s.max_members
                assert len(st.labels) <= s.max_labels
                assert sum(x.count for x in st.inc.alert_counts) == joined
                blocks[joined] = _blocks()
    assert blocks[200_000] <= blocks[50_000] * 1.05, blocks


def test_traced_memory_of_a_growing_incident_stays_flat() -> None:
    """tracemalloc (which slows the correlator ~8x) on the same storm scaled down to a bound
    of 750 and 12,000 alerts: the traced peak over the last quarter is the first's."""
    c = Correlator(TOPOLOGY, CorrelationSettings(max_members=750))
    peaks: list[float] = []
    joined = 0
    gc.collect()
    tracemalloc.start()
    try:
        for events, a in enumerate(single_incident_storm(12_000), 1):
            c.process(a)
            if events % 1000 == 0:
                c.take_membership()
                c.advance(a.epoch)
            if a.status is AlertStatus.firing:
                joined += 1
                if joined % 3000 == 0:
                    peaks.append(tracemalloc.get_traced_memory()[1])
                    tracemalloc.reset_peak()
    finally:
        tracemalloc.stop()
    [st] = c.book.states.values()
    assert st.inc.alert_count == 12_000 and len(st.members) <= 750
    assert peaks[-1] <= peaks[0] * 1.1, [round(p / 2**20, 2) for p in peaks]
