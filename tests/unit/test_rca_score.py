"""The rca scorer reproduces the README's definitions and the baseline figures it quotes."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import baselines
from benchmarks.correlation import load_rca, ppr_reranked
from benchmarks.rca_score import per_fault, score

TRUTH = {
    "faults": [
        {"fault_id": "f1", "root_cause_service": "db"},
        {"fault_id": "f2", "root_cause_service": "api"},
        {"fault_id": "f3", "root_cause_service": "web"},
    ],
    "alert_fault": {"a1": "f1", "a2": "f1", "a3": "f2", "a4": "f2", "b1": None, "b2": None},
}


def test_definitions_on_a_toy_case() -> None:
    incs: list[dict[str, Any]] = [
        {
            "id": "i1",
            "alert_ids": ["a1", "a2", "b1"],
            "root_cause": "api",
            "root_cause_candidates": [
                {"service": "api", "score": 0.6},
                {"service": "db", "score": 0.4},
            ],
        },
        {"id": "i2", "alert_ids": ["a3"], "root_cause": "api"},
        {"id": "i3", "alert_ids": ["a4", "b2"], "root_cause": "web"},
    ]
    r = score(TRUTH, incs)
    assert r.ac1 == pytest.approx(1 / 3)  # f2 hit (tie between i2/i3: first listed), f3 no alerts
    assert r.ac3 == pytest.approx(2 / 3)
    assert r.ac1_star == pytest.approx(1 / 2)
    assert r.pair_precision == pytest.approx(1.0) and r.pair_recall == pytest.approx(0.5)
    assert r.noise == pytest.approx(1.0)
    assert r.compression == pytest.approx(1 - 3 / 6)


def test_per_fault_ranks_match_the_score() -> None:
    incs: list[dict[str, Any]] = [
        {
            "id": "i1",
            "alert_ids": ["a1", "a2", "b1"],
            "root_cause": "api",
            "root_cause_candidates": [{"service": "db", "score": 0.4}],
        },
        {"id": "i2", "alert_ids": ["a3"], "root_cause": "api"},
        {"id": "i3", "alert_ids": ["a4", "b2"], "root_cause": "web"},
    ]
    by = {f.fault_id: f for f in per_fault(TRUTH, incs)}
    assert (by["f1"].incident, by["f1"].rank, by["f1"].ranked) == ("i1", 2, ["api", "db"])
    assert (by["f2"].incident, by["f2"].rank) == ("i2", 1)  # tie i2/i3: first listed
    assert (by["f3"].incident, by["f3"].rank, by["f3"].alerts) == (None, None, 0)
    r = score(TRUTH, incs)
    assert r.ac1 == sum(f.rank == 1 for f in by.values()) / 3
    assert r.ac3 == sum(f.rank is not None and f.rank <= 3 for f in by.values()) / 3


def test_last_line_per_id_counts() -> None:
    incs = [
        {"id": "i1", "alert_ids": ["a1"], "root_cause": "x"},
        {"id": "i1", "alert_ids": ["a1", "a2"], "root_cause": "db"},
    ]
    assert score(TRUTH, incs).ac1 == pytest.approx(1 / 3)


def test_baselines_reproduce_readme_figures() -> None:
    topo, alerts, truth = load_rca()
    w = score(truth, baselines.time_windows(alerts, topo, rank="earliest"))
    assert (round(w.ac1, 2), round(w.ac3, 2), round(w.pair_f1, 2)) == (0.57, 0.75, 0.84)
    d = score(truth, baselines.time_windows(alerts, topo, rank="downstream"))
    assert (round(d.ac1, 2), round(d.ac3, 2), round(d.pair_f1, 2)) == (0.46, 0.64, 0.84)
    am = score(truth, baselines.alertmanager_group_by_service(alerts))
    assert (round(am.ac1, 2), round(am.ac3, 2), round(am.pair_f1, 2)) == (0.73, 0.73, 0.34)


def test_pagerank_comparison_ranks_a_saturated_dependency_of_slow_callers_first() -> None:
    from datetime import UTC, datetime

    from pipeline.domain.schemas import Alert, AlertStatus, Severity
    from pipeline.domain.topology import Topology

    topo = Topology.from_edges("t", [("web", "api"), ("api", "db"), ("web", "cdn")])
    t = datetime(2024, 1, 1, tzinfo=UTC)
    spec = [("a1", "db", "CPUSaturation"), ("a2", "api", "HighLatencyP99")]
    spec.append(("a3", "web", "HighLatencyP99"))
    alerts = [
        Alert(
            id=i,
            source="t",
            service=svc,
            name=name,
            severity=Severity.warning,
            status=AlertStatus.firing,
            timestamp=t,
        )
        for i, svc, name in spec
    ]
    (out,) = ppr_reranked(topo, alerts, [{"id": "i1", "alert_ids": ["a1", "a2", "a3"]}])
    assert out["root_cause"] == "db"
    scores = [c["score"] for c in out["root_cause_candidates"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 4
