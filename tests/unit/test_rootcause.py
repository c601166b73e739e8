"""Root-cause ranking: silent candidates, time order of weak evidence."""

from __future__ import annotations

from pipeline.domain.graphs import GraphIndex
from pipeline.domain.rootcause import RankSettings, rank
from pipeline.domain.topology import Topology

# entry -> mid -> leaf ; entry -> a ; entry -> b ; mid -> c
TOPO = Topology.from_edges(
    "t", [("entry", "mid"), ("mid", "leaf"), ("entry", "a"), ("entry", "b"), ("mid", "c")]
)


def _rank(evidence: dict[str, set[str]], first: dict[str, float]) -> list[str]:
    return [r.service for r in rank(evidence, first, GraphIndex(TOPO, 2), RankSettings())]


def test_silent_service_between_two_symptomatic_services_is_a_candidate() -> None:
    # errors at the entry point, slow outbound calls at the leaf: the silent link in the middle
    out = _rank({"entry": {"error"}, "leaf": {"downstream"}}, {"entry": 0.0, "leaf": 0.0})
    assert "mid" in out[:3]


def test_traffic_drop_alone_is_not_alerting_first() -> None:
    # b only lost traffic (a consequence) and alerted with the errors; mid has callers with
    # errors and traffic drops on its dependency and raised its own latency a bit later
    ev = {"entry": {"error"}, "b": {"traffic"}, "mid": {"latency"}, "leaf": {"traffic"}}
    first = {"entry": 0.0, "b": 0.0, "mid": 61.0, "leaf": 61.0}
    out = _rank(ev, first)
    assert out.index("mid") < out.index("b")
