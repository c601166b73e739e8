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
    # a snapshot keeps the call (its origin comes back with the next relations)
    again = Correlator.restore(TOPO, None, c.snapshot())
    assert again.graph.learned == [("checkout", "payment")]


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
    assert learned_edges.apply(states, store.data) == 2  # type: ignore[arg-type]
    assert learned_edges.apply(states, store.data) == 0  # type: ignore[arg-type]
    assert learned_edges.apply(states, b"{not json") == 0  # type: ignore[arg-type]
    assert all(p.correlator.graph.learned for p in states.pipelines.values())
