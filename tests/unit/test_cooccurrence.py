"""Co-occurrence learning and the joins for services the topology cannot place."""

from __future__ import annotations

import pytest

from pipeline.domain.cooccurrence import CoOccurrence, CoOccurrenceSettings
from pipeline.domain.correlate import CorrelationSettings, Correlator
from pipeline.domain.topology import Topology
from tests.unit.test_correlate import alert


def test_onsets_and_co_onsets_are_counted_once_per_burst() -> None:
    c = CoOccurrence(CoOccurrenceSettings(window_s=60))
    assert c.observe("a", 0)
    assert not c.observe("a", 30)  # still the same burst of a
    assert c.observe("b", 40)
    assert not c.observe("b", 45)
    assert c.count("a", "b") == 1
    assert c.observe("c", 200)  # too late for either
    assert c.count("a", "c") == 0 and c.count("b", "c") == 0


def test_a_pair_is_associated_after_repeated_co_onsets_with_lift() -> None:
    c = CoOccurrence(CoOccurrenceSettings(window_s=60, min_count=3, min_lift=3))
    for k in range(3):
        t = k * 3600.0
        c.observe("db", t)
        c.observe("api", t + 20)
        c.observe("noisy", t + 1800)  # alerts often, never with them
    assert c.associated("db", "api")
    assert c.partners("api") == ["db"]
    assert not c.associated("db", "noisy")


def test_a_service_that_alerts_all_the_time_has_no_lift() -> None:
    c = CoOccurrence(CoOccurrenceSettings(window_s=60, min_count=3, min_lift=3))
    events = [(k * 120.0, "chatty") for k in range(40)]  # starts alerting every 2 minutes
    events += [(k * 1200.0 + 10, "db") for k in range(3)]
    for t, svc in sorted(events):
        c.observe(svc, t)
    assert c.count("chatty", "db") == 3
    assert not c.associated("chatty", "db")


def test_checkpoint_round_trip() -> None:
    c = CoOccurrence()
    for k in range(4):
        c.observe("a", k * 1000.0)
        c.observe("b", k * 1000.0 + 5)
    d = CoOccurrence.from_bytes(c.to_bytes())
    assert d.count("a", "b") == c.count("a", "b") == 4
    assert d.partners("a") == ["b"]
    d.observe("a", 5000.0)
    c.observe("a", 5000.0)
    assert d.to_bytes() == c.to_bytes()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="window_s"):
        CoOccurrenceSettings(window_s=0)


# checkout calls payment, but the topology misses it; "orphan" has no edges at all
TOPO = Topology.from_edges("t", [("frontend", "checkout"), ("search", "index")])
TOPO.graph.add_node("orphan")


def test_a_learned_pair_joins_one_incident_without_a_known_path() -> None:
    settings = CorrelationSettings(quiet_period_s=30)
    c = Correlator(TOPO, settings)
    for k in range(3):  # three earlier faults: payment then checkout, each its own incident
        t = k * 3600.0
        c.process(alert("payment", "CPUSaturation", t, pod=str(k)))
        c.process(alert("checkout", "HighLatencyP99", t + 20, pod=str(k)))
        c.process(alert("payment", "CPUSaturation", t + 300, "resolved", pod=str(k)))
        c.process(alert("checkout", "HighLatencyP99", t + 300, "resolved", pod=str(k)))
        c.advance(t + 1000)
    assert c.cooc is not None and c.cooc.associated("checkout", "payment")
    t = 4 * 3600.0
    c.process(alert("payment", "CPUSaturation", t, pod="4"))
    c.process(alert("checkout", "HighLatencyP99", t + 20, pod="4"))
    latest = max(c.incidents(), key=lambda i: i.opened_at)
    assert set(latest.services) == {"checkout", "payment"}
    assert "started alerting together 4 times so far" in latest.alerts[-1].reason


def test_an_unplaced_service_joins_the_burst_going_on() -> None:
    c = Correlator(TOPO, CorrelationSettings(learn_cooccurrence=False))
    c.process(alert("frontend", "HighLatencyP99", 0))
    c.process(alert("checkout", "CPUSaturation", 10))
    c.process(alert("orphan", "HighLatencyP99", 40))  # listed, no edges: joins the burst
    assert len(c.incidents()) == 1
    assert "no known calls relate" in c.incidents()[0].alerts[-1].reason
    c.process(alert("unknown-svc", "ErrorRateHigh", 50))  # not in the topology: its own
    assert len(c.incidents()) == 2
    c.process(alert("orphan", "MemoryPressure", 500))  # nothing going on: its own incident
    assert len(c.incidents()) == 3
    # a known service joins an ongoing incident of services the graph cannot place ...
    c.process(alert("index", "HighLatencyP99", 520))
    assert len(c.incidents()) == 3
    # ... but not one of known services it has no path to, nor a burst that ended
    c.process(alert("frontend", "HighLatencyP99", 530, pod="1"))
    c.process(alert("search", "HighLatencyP99", 900))
    assert len(c.incidents()) == 5


def test_a_link_label_keeps_an_edgeless_service_out_of_the_burst() -> None:
    c = Correlator(TOPO, CorrelationSettings(learn_cooccurrence=False))
    c.process(alert("frontend", "HighLatencyP99", 0))
    c.process(alert("orphan", "Down", 10, labels={"cluster": "us2"}))
    assert len(c.incidents()) == 2


def test_the_learner_is_checkpointed_with_the_correlator() -> None:
    c = Correlator(TOPO)
    for k in range(4):
        c.process(alert("payment", "CPUSaturation", k * 3600.0, pod=str(k)))
        c.process(alert("checkout", "HighLatencyP99", k * 3600.0 + 20, pod=str(k)))
    restored = Correlator.restore(TOPO, None, c.snapshot())
    assert restored.cooc is not None and restored.cooc.associated("checkout", "payment")
    assert restored.snapshot() == c.snapshot()


def test_a_full_learner_forgets_pairs_seen_once_and_keeps_repeated_ones() -> None:
    c = CoOccurrence(CoOccurrenceSettings(window_s=60, max_pairs=3))
    for k in range(3):
        c.observe("a", k * 1000.0)
        c.observe("b", k * 1000.0 + 1)
    for k, svc in enumerate(("x", "y", "z")):
        c.observe(svc, 5000.0 + k)  # x-y, x-z, y-z: the learner fills up
    assert c.count("a", "b") == 3
    c.observe("w", 9000.0)
    c.observe("v", 9001.0)  # full: the singletons go, v-w fits
    assert c.count("a", "b") == 3 and c.count("v", "w") == 1 and c.count("x", "y") == 0
