"""The generalization benchmark's fault storms and incomplete topologies."""

from __future__ import annotations

from benchmarks import ROOT
from benchmarks.faults import (
    FAULT_KINDS,
    edgeless,
    fault_storm,
    incomplete,
    truth_of_kind,
    without_dark_calls,
)
from pipeline.domain.schemas import AlertStatus
from pipeline.domain.topology import Topology

TOPO = Topology.load(ROOT / "topologies" / "online-boutique.yaml")


def test_storms_are_deterministic_and_every_firing_alert_has_a_label() -> None:
    a = fault_storm(TOPO, faults=12, seed=3)
    b = fault_storm(TOPO, faults=12, seed=3)
    assert [x.id for x in a.alerts] == [x.id for x in b.alerts]
    assert [x.epoch for x in a.alerts] == sorted(x.epoch for x in a.alerts)
    firing = [x for x in a.alerts if x.status is AlertStatus.firing]
    assert {x.id for x in firing} == set(a.truth["alert_fault"])
    assert sorted(a.kinds.values()) == sorted(FAULT_KINDS * 4)
    assert None in a.truth["alert_fault"].values()  # background noise


def test_a_code_defect_is_silent_on_its_service_and_seen_around_it() -> None:
    st = fault_storm(TOPO, kinds=("code-defect",), faults=20, seed=1)
    by_id = {x.id: x for x in st.alerts}
    for f in st.truth["faults"]:
        services = {
            by_id[a].service for a, fid in st.truth["alert_fault"].items() if fid == f["fault_id"]
        }
        assert f["root_cause_service"] not in services
        g = TOPO.graph
        near = set(g.predecessors(f["root_cause_service"])) | set(
            g.successors(f["root_cause_service"])
        )
        near |= {c for s in g.predecessors(f["root_cause_service"]) for c in g.predecessors(s)}
        assert services <= near


def test_network_delays_name_the_call_in_their_labels() -> None:
    st = fault_storm(TOPO, kinds=("network-delay",), faults=10, seed=2)
    calls = [x for x in st.alerts if x.name == "HighRequestLatency"]
    assert calls
    for x in calls:
        caller, callee = x.labels["metric"].split(":")[1].split("->")
        assert callee == x.service and TOPO.graph.has_edge(caller, callee)


def test_incomplete_topology_misses_the_share_of_edges_asked_for() -> None:
    assert incomplete(TOPO, 0.0) is TOPO
    given = incomplete(TOPO, 0.3, seed=1)
    g = given.graph
    assert set(g.edges) <= set(TOPO.graph.edges)
    missing = TOPO.graph.number_of_edges() - g.number_of_edges()
    assert missing >= round(0.3 * TOPO.graph.number_of_edges())
    assert set(g.nodes) < set(TOPO.graph.nodes)  # some services are unknown
    assert incomplete(TOPO, 0.3, seed=1).graph.edges == g.edges


def test_truth_of_kind_keeps_only_that_kind_and_the_background() -> None:
    st = fault_storm(TOPO, faults=9, seed=4)
    tr = truth_of_kind(st, "saturation")
    assert {f["fault_type"] for f in tr["faults"]} == {"saturation"}
    kept = {fid for fid in tr["alert_fault"].values() if fid is not None}
    assert kept == {
        f["fault_id"]
        for f in tr["faults"]
        if any(v == f["fault_id"] for v in st.truth["alert_fault"].values())
    }
    assert sum(v is None for v in tr["alert_fault"].values()) == sum(
        v is None for v in st.truth["alert_fault"].values()
    )


def test_edgeless_lists_a_share_of_services_without_any_edge() -> None:
    assert edgeless(TOPO, 0.0) is TOPO
    given = edgeless(TOPO, 0.4, seed=2)
    g = given.graph
    assert set(g.nodes) == set(TOPO.graph.nodes)  # every service still listed
    assert set(g.edges) <= set(TOPO.graph.edges)
    dark = {n for n in g.nodes if g.degree(n) == 0}
    assert len(dark) >= round(0.4 * TOPO.graph.number_of_nodes())
    assert edgeless(TOPO, 0.4, seed=2).graph.edges == g.edges


def test_no_call_label_names_a_service_listed_without_edges() -> None:
    st = fault_storm(TOPO, kinds=("network-delay",), faults=10, seed=2)
    given = edgeless(TOPO, 0.4, seed=2)
    dark = {n for n in given.graph.nodes if given.graph.degree(n) == 0}
    out = without_dark_calls(st.alerts, given)
    assert [a.id for a in out] == [a.id for a in st.alerts]  # the alerts stay
    stripped = 0
    for before, after in zip(st.alerts, out, strict=True):
        metric = before.labels.get("metric", "")
        ends = set(metric.split(":")[-1].split("->")) if "->" in metric else set()
        if ends & dark:
            assert "metric" not in after.labels
            stripped += 1
        else:
            assert after.labels == before.labels
    assert stripped


def test_a_quiet_defect_moves_only_its_callers_latency_and_load() -> None:
    # the held-out system's code defects: nothing on the faulty service, no error alert,
    # no load change below it; latency and load drops on its callers (two hops up, weaker)
    st = fault_storm(TOPO, kinds=("quiet-defect",), faults=20, seed=1)
    by_id = {x.id: x for x in st.alerts}
    g = TOPO.graph
    seen = set()
    for f in st.truth["faults"]:
        x = f["root_cause_service"]
        mine = [by_id[a] for a, fid in st.truth["alert_fault"].items() if fid == f["fault_id"]]
        one = set(g.predecessors(x))
        two = {c for s in one for c in g.predecessors(s)}
        for a in mine:
            assert a.service != x and a.service in one | two
            assert "Error" not in a.name
            seen.add(a.name)
    assert seen == {"HighLatencyP99", "DownstreamLatencyHigh", "TrafficDrop"}
