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


def test_incremental_ranking_equals_a_fresh_ranking() -> None:
    import random

    from pipeline.bench.synthetic import layered_graph
    from pipeline.domain.rootcause import KINDS, RankCache

    topo = layered_graph(200)
    g = GraphIndex(topo, 2)
    rng = random.Random(3)
    nodes = sorted(topo.graph.nodes)
    ev: dict[str, set[str]] = {}
    first: dict[str, float] = {}
    cache = RankCache()
    for step in range(120):
        svc = rng.choice(nodes[:60])
        ev.setdefault(svc, set()).add(rng.choice(KINDS))
        first.setdefault(svc, float(step))
        if step == 80:  # evidence shrinks (an incident split): the cache starts over
            for x in list(ev)[:5]:
                del ev[x]
                del first[x]
        inc = rank(ev, first, g, RankSettings(), cache=cache)
        fresh = rank(ev, first, g, RankSettings())
        assert [(r.service, round(r.llr, 6)) for r in inc] == [
            (r.service, round(r.llr, 6)) for r in fresh
        ]


def test_reasons_name_the_broken_link_and_weak_first_alerts() -> None:
    ev = {"entry": {"error"}, "leaf": {"downstream"}, "b": {"traffic"}}
    out = rank(ev, dict.fromkeys(ev, 0.0), GraphIndex(TOPO, 2), RankSettings())
    by = {r.service: r.reasons for r in out}
    assert any("broken link" in x for x in by["mid"])
    assert any("traffic drops only" in x for x in by["b"])
