"""Root-cause ranking: silent candidates, time order of weak evidence."""

from __future__ import annotations

import pytest

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

    from benchmarks.synthetic import layered_graph
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
        if step % 10 == 5:  # an earlier alert arrives late: the service's onset moves back
            first[svc] -= 70.0
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


def test_silent_dependency_of_one_of_several_symptomatic_services_is_a_candidate() -> None:
    # errors at the entry point, a later latency alert on c: a and b (silent dependencies of
    # the entry point only) are alternatives too, ranked after the alerting services
    ev = {"entry": {"error"}, "c": {"latency"}}
    out = rank(
        ev,
        {"entry": 0.0, "c": 61.0},
        GraphIndex(TOPO, 2),
        RankSettings(max_candidates=10),
    )
    names = [r.service for r in out]
    assert {"a", "b", "mid", "leaf"} <= set(names)
    assert names.index("a") > names.index("entry")
    assert all(not r.alerting for r in out if r.service in {"a", "b", "mid", "leaf"})


# three callers of one silent database, and an unrelated service
SHARED = Topology.from_edges("s", [("x", "db"), ("y", "db"), ("z", "db"), ("w", "other")])


def test_silent_shared_dependency_ranks_first_when_its_callers_alert_first() -> None:
    ev = {"x": {"latency"}, "y": {"latency"}, "z": {"error"}}
    out = rank(ev, dict.fromkeys(ev, 0.0), GraphIndex(SHARED, 2), RankSettings())
    assert out[0].service == "db"
    assert not out[0].alerting
    reasons = " ".join(out[0].reasons)
    assert "a dependency shared by several alerting callers" in reasons
    assert "among the first to alert" in reasons


def test_time_order_counts_only_the_symptoms_a_candidate_explains() -> None:
    g = GraphIndex(SHARED, 2)
    s = RankSettings()
    ev = {"w": {"error"}, "x": {"latency"}, "y": {"latency"}}
    early = {r.service: r for r in rank(ev, dict.fromkeys(ev, 0.0), g, s)}
    # x and y began two minutes after the unrelated w: db's symptoms still begin at its
    # callers, so w (which opened the incident) does not make db late
    later = {r.service: r for r in rank(ev, {"w": 0.0, "x": 120.0, "y": 120.0}, g, s)}
    assert early["db"].llr == pytest.approx(later["db"].llr)
    assert any("first to alert of what it explains" in x for x in later["db"].reasons)


def test_a_silent_cause_shows_first_at_its_nearest_callers() -> None:
    g = GraphIndex(TOPO, 2)
    s = RankSettings()
    ev = {"entry": {"latency"}, "mid": {"latency"}}
    # leaf is silent; its direct caller mid alerted first, then entry two hops up
    near_first = {r.service: r for r in rank(ev, {"mid": 0.0, "entry": 30.0}, g, s)}
    # entry alerted two minutes before mid: the symptoms did not begin next to leaf
    far_first = {r.service: r for r in rank(ev, {"entry": 0.0, "mid": 120.0}, g, s)}
    assert near_first["leaf"].llr - far_first["leaf"].llr == pytest.approx(s.first_llr - s.late_llr)
    # an alerting candidate is timed against the symptoms it explains: mid before entry
    assert near_first["mid"].llr - far_first["mid"].llr == pytest.approx(s.first_llr - s.late_llr)


def test_slow_outbound_calls_explain_a_services_own_latency_and_errors() -> None:
    # api waits on a slow dependency: its own latency and errors do not make it the cause
    topo = Topology.from_edges("w", [("web", "api"), ("api", "db")])
    g = GraphIndex(topo, 2)
    waiting = rank({"api": {"downstream", "latency", "error"}}, {"api": 0.0}, g, RankSettings())
    assert waiting[0].service == "db"
    assert any("slow outbound calls explain" in x for x in waiting[1].reasons)
    # with a resource problem of its own, api stays the first suspect
    busy = {"api": {"downstream", "latency", "saturation"}}
    assert rank(busy, {"api": 0.0}, g, RankSettings())[0].service == "api"


def test_a_service_with_traffic_drops_only_is_weighed_as_silent() -> None:
    # mid lost load only (its callers stopped calling); a silent caller that explains the
    # drop competes with it on equal terms
    topo = Topology.from_edges("d", [("entry", "mid")])
    ranked = rank({"mid": {"traffic"}}, {"mid": 0.0}, GraphIndex(topo, 2), RankSettings())
    by = {r.service: r for r in ranked}
    assert by["entry"].llr >= by["mid"].llr
    assert any("no symptom of its own" in x for x in by["mid"].reasons)


def test_reasons_say_what_is_known_about_dependencies() -> None:
    ev = {"mid": {"saturation"}, "leaf": {"saturation"}, "ghost": {"error"}}
    out = rank(ev, dict.fromkeys(ev, 0.0), GraphIndex(TOPO, 2), RankSettings())
    by = {r.service: r.reasons for r in out}
    assert any(x.startswith("its dependencies are unhealthy: leaf") for x in by["mid"])
    assert "no dependencies in the topology (nothing below it to blame)" in by["leaf"]
    assert "not in the topology" in by["ghost"]
    ev = {"mid": {"error"}}
    (top, *_) = rank(ev, {"mid": 0.0}, GraphIndex(TOPO, 2), RankSettings())
    assert top.service == "mid" and "its dependencies show no symptoms" in top.reasons


def test_silent_common_caller_of_services_that_lost_load_is_named() -> None:
    # a code defect in mid: its dependencies leaf and c lose load; mid itself raises nothing
    # and no caller alerts: mid is listed (before, only alerting services and dependencies
    # of services with symptoms were candidates)
    ev = {"leaf": {"traffic"}, "c": {"traffic"}}
    ranked = rank(ev, {"leaf": 10.0, "c": 12.0}, GraphIndex(TOPO, 2), RankSettings())
    mid = next(r for r in ranked if r.service == "mid")
    assert not mid.alerting
    assert any("c, leaf lost load" in r for r in mid.reasons)


def test_a_silent_candidate_whose_other_callers_stay_quiet_counts_less() -> None:
    # api alerts on slow calls; it calls db (also called by two quiet services) and cache
    # (called by api alone): cache explains the symptoms without quiet callers
    topo = Topology.from_edges(
        "q", [("api", "db"), ("api", "cache"), ("batch", "db"), ("report", "db")]
    )
    ranked = rank({"api": {"downstream"}}, {"api": 0.0}, GraphIndex(topo, 2), RankSettings())
    order = [r.service for r in ranked]
    assert order.index("cache") < order.index("db")
    db = next(r for r in ranked if r.service == "db")
    assert any("batch, report raised no alert" in r for r in db.reasons)
    neutral = rank(
        {"api": {"downstream"}}, {"api": 0.0}, GraphIndex(topo, 2), RankSettings(quiet_caller_llr=0)
    )
    assert {r.service: r.llr for r in neutral}["db"] == {r.service: r.llr for r in neutral}["cache"]


def test_reasons_name_inferred_and_unknown_relations() -> None:
    # ghost is not in the topology; w and x have no path between them but were learned to
    # keep starting to alert together
    ev = {"w": {"error"}, "x": {"latency"}, "ghost": {"error"}}
    out = rank(
        ev,
        dict.fromkeys(ev, 0.0),
        GraphIndex(SHARED, 2),
        RankSettings(max_candidates=10),
        related=lambda s: {"w": ["x"], "x": ["w"]}.get(s, []),
    )
    by = {r.service: " ".join(r.reasons) for r in out}
    assert "places ghost nowhere" in by["w"]
    assert "inferred relation: x kept starting to alert with it" in by["w"]
    assert "the topology places it nowhere" in by["ghost"]


def test_equal_evidence_goes_to_the_service_that_showed_first() -> None:
    # two services the topology lists without edges, both slow: nothing relates them, the
    # evidence ties, and the one that alerted first is named (not the first by name)
    import networkx as nx

    g = nx.DiGraph([("entry", "mid")])
    g.add_nodes_from(["a-later", "z-first"])
    graph = GraphIndex(Topology(name="t", graph=g), 2)
    ev = {"a-later": {"latency"}, "z-first": {"latency"}}
    out = rank(ev, {"z-first": 0.0, "a-later": 30.0}, graph, RankSettings())
    assert out[0].score == pytest.approx(out[1].score)
    assert [r.service for r in out[:2]] == ["z-first", "a-later"]
    out = rank(ev, {"z-first": 30.0, "a-later": 0.0}, graph, RankSettings())
    assert [r.service for r in out[:2]] == ["a-later", "z-first"]


def test_a_silent_dependency_of_a_caller_that_only_lost_load_is_named() -> None:
    # a defect in leaf (silent, no errors anywhere): its only caller mid waits on the
    # failing calls and, under closed-loop load, completes fewer requests: mid only lost
    # load. leaf is a candidate (before, only mid's callers were) and comes before mid,
    # whose drop is no symptom of its own
    topo = Topology.from_edges("q", [("entry", "mid"), ("mid", "leaf")])
    ranked = rank({"mid": {"traffic"}}, {"mid": 0.0}, GraphIndex(topo, 2), RankSettings())
    by = {r.service: r for r in ranked}
    assert "leaf" in by and not by["leaf"].alerting
    assert by["leaf"].llr > by["mid"].llr
    assert any("its caller mid lost load (waiting on it" in x for x in by["leaf"].reasons)
    assert any("among the first to alert" in x for x in by["leaf"].reasons)
    # a dependency of a service with symptoms of its own is a candidate as before, with the
    # same terms: the drop adds no candidate there
    both = rank({"mid": {"traffic", "latency"}}, {"mid": 0.0}, GraphIndex(topo, 2), RankSettings())
    assert "leaf" in {r.service for r in both}
