"""Calls named by alert labels: parsing, the graph learning them, the correlator using them."""

from __future__ import annotations

from pipeline.domain.call_edges import call_edge
from pipeline.domain.correlate import CorrelationSettings, Correlator
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.topology import Topology
from tests.unit.test_correlate import alert


def test_call_edge_from_an_arrow_in_a_label_value() -> None:
    labels = {"metric": "CallLatencyP50(s):checkoutservice->cartservice"}
    assert call_edge("cartservice", labels) == ("checkoutservice", "cartservice")


def test_call_edge_from_a_label_pair() -> None:
    assert call_edge("b", {"caller": "a", "callee": "b"}) == ("a", "b")
    assert call_edge("a", {"source_service": "a", "destination_service": "b"}) == ("a", "b")


def test_a_call_not_touching_the_alerts_service_is_no_call() -> None:
    assert call_edge("x", {"metric": "a->b"}) is None
    assert call_edge("x", {"caller": "a", "callee": "b"}) is None
    assert call_edge("a", {"metric": "a->a"}) is None
    assert call_edge("a", {}) is None
    assert call_edge("a", None) is None


def test_graph_index_learns_an_edge_and_forgets_its_cached_answers() -> None:
    g = GraphIndex(Topology.from_edges("t", [("a", "b")]), 2)
    assert g.down("a") == {"b": 1}
    assert g.add_edge("b", "c")
    assert not g.add_edge("b", "c")
    assert not g.add_edge("a", "b")  # already in the topology
    assert g.down("a") == {"b": 1, "c": 2}
    assert g.up("c") == {"b": 1, "a": 2}
    assert g.known("c")
    assert g.learned_calls("c") == [("b", "c")]
    assert g.learned == [("b", "c")]


# frontend calls checkout; checkout's call to payment is missing from the topology
TOPO = Topology.from_edges("t", [("frontend", "checkout"), ("other", "thing")])


def test_a_learned_call_relates_alerts_and_survives_a_snapshot() -> None:
    c = Correlator(TOPO)
    c.process(alert("checkout", "HighLatencyP99", 0))
    slow = alert("payment", "HighRequestLatency", 5, labels={"metric": "checkout->payment"})
    c.process(slow)
    assert len(c.incidents()) == 1
    assert c.graph.learned == [("checkout", "payment")]
    restored = Correlator.restore(TOPO, None, c.snapshot())
    assert restored.graph.learned == [("checkout", "payment")]
    restored.process(alert("payment", "CPUSaturation", 10))
    assert len(restored.incidents()) == 1


def test_learning_calls_can_be_turned_off_and_is_bounded() -> None:
    off = Correlator(TOPO, CorrelationSettings(learn_calls=False))
    off.process(alert("payment", "HighRequestLatency", 0, labels={"metric": "checkout->payment"}))
    assert off.graph.learned == []
    one = Correlator(TOPO, CorrelationSettings(max_learned_calls=1))
    one.process(alert("payment", "HighRequestLatency", 0, labels={"metric": "checkout->payment"}))
    one.process(alert("cart", "HighRequestLatency", 1, labels={"metric": "checkout->cart"}))
    assert one.graph.learned == [("checkout", "payment")]
