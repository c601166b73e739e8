"""The upper bound of AC@1 from alert evidence (benchmarks/rca_bound.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import networkx as nx

from benchmarks.rca_bound import bound, role_bound
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.schemas import Alert, AlertStatus, Severity
from pipeline.domain.topology import Topology


def _alert(service: str, name: str, t: int) -> Alert:
    return Alert(
        id=f"{service}-{name}-{t}",
        source="t",
        service=service,
        name=name,
        severity=Severity.warning,
        status=AlertStatus.firing,
        timestamp=datetime.fromtimestamp(1_700_000_000 + t, UTC),
    )


def test_identical_evidence_names_at_most_its_most_common_cause() -> None:
    evidence = {"f1": "e", "f2": "e", "f3": "e", "f4": "x", "f5": None}
    cause = {"f1": "a", "f2": "a", "f3": "b", "f4": "c", "f5": "a"}
    r = bound(evidence, cause)
    assert r["ac1_bound"] == 3 / 5  # a twice in class e, c once; f5 raised no alert
    assert r["ac3_bound"] == 4 / 5
    # leave-one-out: f1 and f2 are named by each other, f3 is not, f4 has no other fault
    assert r["ac1_loo"] == 2 / 5
    assert r["conflicting"] == 1


def test_name_free_ties_and_opposite_orders_lower_the_bound() -> None:
    g = nx.DiGraph([("front", "x"), ("front", "y")])
    graph = GraphIndex(Topology(name="t", graph=g), hops=2)
    nodes = sorted(g.nodes)
    # front alerts alone: x and y (silent dependencies) look the same to any name-free ranker
    per_fault = {"f1": [_alert("front", "HighLatencyP99", 0)]}
    r = role_bound(per_fault, {"f1": "x"}, graph, nodes, timed=False)
    assert r["ties_only"] == 1 / 2
    # two faults with the same roles but opposite causes: one of them is lost
    same = [_alert("front", "HighLatencyP99", 0), _alert("x", "CPUSaturation", 0)]
    per_fault = {"f1": same, "f2": list(same)}
    r = role_bound(per_fault, {"f1": "x", "f2": "front"}, graph, nodes, timed=False)
    assert r["conflicting"] == 1
    assert r["ac1_bound"] == 1 / 2


def test_generalization_bound_covers_every_kind_and_condition() -> None:
    from benchmarks.generalization import CONDITIONS
    from benchmarks.rca_bound import generalization_bound

    rows = generalization_bound(seeds=1, faults=6)
    assert {(r["kind"], r["removed"]) for r in rows} == {
        (k, c) for k in ("saturation", "network-delay", "code-defect", "all") for c in CONDITIONS
    }
    assert all(0.0 <= r["ac1_bound"] <= 1.0 for r in rows)


def test_onsets_of_one_evaluation_share_a_rank() -> None:
    from benchmarks.rca_bound import _profiles

    g = nx.DiGraph([("front", "x"), ("front", "y")])
    graph = GraphIndex(Topology(name="t", graph=g), hops=2)
    nodes = sorted(g.nodes)
    jitter = [_alert("front", "ErrorRateHigh", 0), _alert("x", "TrafficDrop", 1)]
    same = [_alert("front", "ErrorRateHigh", 0), _alert("x", "TrafficDrop", 0)]
    later = [_alert("front", "ErrorRateHigh", 0), _alert("x", "TrafficDrop", 60)]

    def prof(alerts: list[Alert], merge_s: float = 0.0) -> object:
        return _profiles(alerts, graph, nodes, True, False, merge_s)

    # a 1-s offset is an order at full resolution ...
    assert prof(jitter) != prof(same)
    # ... and one evaluation when onsets up to 30 s apart count as one; 60 s apart stay ordered
    assert prof(jitter, 30.0) == prof(same, 30.0)
    assert prof(jitter, 30.0) != prof(later, 30.0)
