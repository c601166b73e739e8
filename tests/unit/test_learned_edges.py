"""Learned-edges mode: suggested missing edges above a confidence become learned calls of the
correlator, named as such in explanations; the worker's share/apply through Redis."""

from __future__ import annotations

import networkx as nx

from pipeline.app import learned_edges
from pipeline.config import Settings
from pipeline.domain.correlate import Correlator
from pipeline.domain.insights import learned
from pipeline.domain.insights.topology import EdgeSuggestion
from pipeline.domain.topology import Topology
from tests.unit.test_correlate import alert

# checkout calls payment, but the topology lost that edge
TOPO = Topology.from_edges("t", [("frontend", "checkout"), ("payment", "db")])


def _suggestion(caller: str, callee: str, confidence: float) -> EdgeSuggestion:
    return EdgeSuggestion(
        caller=caller,
        callee=callee,
        leader=callee,
        follower=caller,
        led_together=9,
        leader_led=10,
        follower_incidents=12,
        incidents=100,
        expected=1.2,
        lift=7.5,
        p_value=1e-6,
        q_value=1 - confidence,
        confidence=confidence,
        together=9,
        examples=[],
    )


def _storm(c: Correlator) -> None:
    c.process(alert("payment", "CPUSaturation", 0))
    c.process(alert("checkout", "HighLatencyP99", 20))


def test_relations_above_the_confidence_most_confident_first_and_round_trip() -> None:
    got = learned.relations(
        [_suggestion("a", "b", 0.95), _suggestion("c", "d", 0.999), _suggestion("e", "f", 0.99)],
        0.99,
    )
    assert got == [("c", "d", 0.999), ("e", "f", 0.99)]
    assert learned.decode(learned.encode(got)) == got


def test_without_the_mode_the_missing_edge_splits_the_failure() -> None:
    c = Correlator(TOPO)
    _storm(c)
    assert len(c.incidents()) == 2


def test_a_learned_relation_groups_the_failure_and_the_explanation_says_it_was_learned() -> None:
    c = Correlator(TOPO)
    assert c.learn_relations([("checkout", "payment", 0.97)]) == 1
    assert c.learn_relations([("checkout", "payment", 0.98)]) == 0  # known: not new
    _storm(c)
    (inc,) = c.incidents()
    assert inc.root_cause == "payment"
    why = inc.explanation
    assert "calls learned from incident history at confidence 0.98" in why, why
    assert "checkout -> payment" in why
    # a snapshot keeps the call, and where it was learned from
    again = Correlator.restore(TOPO, None, c.snapshot())
    assert again.graph.learned == [("checkout", "payment")]
    assert again.graph.learned_from(("checkout", "payment")).startswith("incident history")


def test_alert_label_calls_keep_their_wording() -> None:
    c = Correlator(TOPO)
    c.learn_call("checkout", "payment")
    assert c.graph.learned_from(("checkout", "payment")) == "alert labels"


class _Pipe:
    def __init__(self) -> None:
        self.correlator = Correlator(TOPO)


class _States:
    def __init__(self) -> None:
        self.pipelines = {0: _Pipe(), 1: _Pipe()}


class _Store:
    data: bytes | None = None

    def set_learned_relations(self, data: bytes) -> None:
        self.data = data


def test_the_worker_shares_the_relations_and_every_correlator_takes_them() -> None:
    from pipeline.domain.insights import Insights

    settings = Settings.model_validate({"insights": {"learned_edges": True}})
    report = Insights().report(nx.DiGraph())
    report = type(report)(
        **{**report.__dict__, "suggested_edges": [_suggestion("checkout", "payment", 0.995)]}
    )
    store = _Store()
    learned_edges.share(settings, store, report)  # type: ignore[arg-type]
    assert learned.decode(store.data or b"") == [("checkout", "payment", 0.995)]
    states = _States()
    edges = learned_edges.LearnedEdges()
    assert edges.apply(states, None) == (0, 0)  # type: ignore[arg-type]
    assert edges.apply(states, store.data) == (2, 0)  # type: ignore[arg-type]
    assert all(p.correlator.graph.learned for p in states.pipelines.values())
    assert edges.apply(states, b"{not json") == (0, 0)  # type: ignore[arg-type]
    assert all(p.correlator.graph.learned for p in states.pipelines.values())


def test_unchanged_relations_are_not_applied_again_but_a_new_correlator_gets_them() -> None:
    states, edges = _States(), learned_edges.LearnedEdges()
    data = learned.encode([("checkout", "payment", 0.995)])
    assert edges.apply(states, data) == (2, 0)  # type: ignore[arg-type]
    calls = []
    for pipe in states.pipelines.values():
        real = pipe.correlator.sync_relations
        pipe.correlator.sync_relations = lambda r, real=real: calls.append(r) or real(r)  # type: ignore[method-assign]
    assert edges.apply(states, data) == (0, 0)  # type: ignore[arg-type]
    assert calls == []  # unchanged: no correlator touched
    states.pipelines[2] = _Pipe()  # a partition taken (or restored from its checkpoint)
    assert edges.apply(states, data) == (1, 0)  # type: ignore[arg-type]
    assert calls == []
    assert states.pipelines[2].correlator.graph.learned == [("checkout", "payment")]


def test_a_relation_the_evidence_stops_supporting_is_forgotten() -> None:
    states, edges = _States(), learned_edges.LearnedEdges()
    both = learned.encode([("checkout", "payment", 0.995), ("frontend", "db", 0.991)])
    assert edges.apply(states, both) == (4, 0)  # type: ignore[arg-type]
    c = states.pipelines[0].correlator
    c.learn_call("payment", "cache")  # from alert labels: not the history's to forget
    # the next report suggests checkout -> payment no more at the confidence (the same rule
    # that added it): it is forgotten, the other one and the alert-label call stay
    rest = learned.encode([("frontend", "db", 0.993)])
    assert edges.apply(states, rest) == (0, 2)  # type: ignore[arg-type]
    assert c.graph.learned == [("frontend", "db"), ("payment", "cache")]
    assert "payment" not in c.graph.down("checkout")
    _storm(c)  # the failure splits again, as without the call
    assert len(c.incidents()) == 2
    assert c.graph.learned_from(("frontend", "db")) == "incident history at confidence 0.99"
    assert edges.apply(states, learned.encode([])) == (0, 2)  # type: ignore[arg-type]
    assert c.graph.learned == [("payment", "cache")]


def test_a_topology_edge_is_never_forgotten_and_origins_survive_a_checkpoint() -> None:
    c = Correlator(TOPO)
    assert not c.unlearn_call("frontend", "checkout")
    assert "checkout" in c.graph.down("frontend")
    c.sync_relations([("checkout", "payment", 0.995)])
    again = Correlator.restore(TOPO, None, c.snapshot())
    assert again.graph.learned_from(("checkout", "payment")).startswith("incident history")
    assert again.sync_relations([]) == (0, 1)
    assert again.graph.learned == []
