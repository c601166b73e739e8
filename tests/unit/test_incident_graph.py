"""The picture of an incident: which services, their roles, layers and edges."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from pathlib import Path

from pipeline.domain.incident_graph import (
    NODE_H,
    NODE_W,
    EdgeKind,
    Flow,
    IncidentGraph,
    Role,
    incident_graph,
)
from pipeline.domain.schemas import (
    AlertCount,
    AlertRef,
    AlertStatus,
    Incident,
    IncidentStatus,
    RootCauseCandidate,
    Severity,
)
from pipeline.domain.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
BOUTIQUE = Topology.load(ROOT / "topologies" / "online-boutique.yaml")
T = datetime(2024, 5, 1, tzinfo=UTC)


def _incident(
    services: list[str],
    root: str | None,
    candidates: Sequence[tuple[str, bool]] = (),
    suppressed: AbstractSet[str] = frozenset(),
) -> Incident:
    refs = [
        AlertRef(
            id=f"a{i}",
            service=s,
            name="HighLatency",
            severity=Severity.warning,
            status=AlertStatus.firing,
            timestamp=T,
            suppressed=s in suppressed,
        )
        for i, s in enumerate(services)
    ]
    return Incident(
        id="inc-1",
        status=IncidentStatus.open,
        opened_at=T,
        updated_at=T,
        services=sorted(set(services)),
        alerts=refs,
        alert_ids=[r.id for r in refs],
        root_cause=root,
        root_cause_candidates=[
            RootCauseCandidate(service=s, score=0.9 - 0.2 * i, alerting=a)
            for i, (s, a) in enumerate(candidates)
        ],
        alert_counts=[
            AlertCount(service=s, name="HighLatency", count=2, firing=1) for s in services
        ],
    )


STORM = _incident(
    ["productcatalogservice", "recommendationservice", "checkoutservice", "frontend"],
    "productcatalogservice",
    [("productcatalogservice", True), ("recommendationservice", True), ("cartservice", False)],
    suppressed={"frontend", "checkoutservice"},
)


def _roles(g: IncidentGraph) -> dict[str, Role]:
    return {n.name: n.role for n in g.nodes}


def test_roles_root_candidates_alerting_and_neighbours() -> None:
    g = incident_graph(BOUTIQUE, STORM)
    roles = _roles(g)
    assert roles["productcatalogservice"] is Role.root
    assert roles["recommendationservice"] is Role.candidate
    assert roles["cartservice"] is Role.candidate  # a silent candidate is drawn as one
    assert roles["frontend"] is Role.alerting
    assert roles["checkoutservice"] is Role.alerting
    # every direct neighbour of an incident service is there, without alerts
    for quiet in ("paymentservice", "shippingservice", "emailservice", "adservice"):
        assert roles[quiet] is Role.neighbour
    root = g.node("productcatalogservice")
    assert (root.rank, root.score, root.alerts, root.firing) == (1, 0.9, 2, 1)
    assert g.node("cartservice").alerts == 0 and g.node("cartservice").rank == 3
    assert g.node("frontend").suppressed and not g.node("recommendationservice").suppressed
    assert g.omitted == 0


def test_callers_are_drawn_above_what_they_call_and_edges_are_directed() -> None:
    g = incident_graph(BOUTIQUE, STORM)
    drawn = {n.name for n in g.nodes}
    expected = {(u, v) for u, v in BOUTIQUE.graph.edges if u in drawn and v in drawn}
    assert {(e.caller, e.callee) for e in g.edges} == expected
    for e in g.edges:
        caller, callee = g.node(e.caller), g.node(e.callee)
        assert caller.y < callee.y, (e.caller, e.callee)
        # the path leaves the caller's box at the bottom and enters the callee's at the top
        assert e.points[0][1] > caller.y and e.points[-1][1] < callee.y
    # frontend -> productcatalogservice skips the layer of recommendationservice: one bend
    skip = next(e for e in g.edges if (e.caller, e.callee) == ("frontend", "productcatalogservice"))
    assert len(skip.points) == 3
    kinds = {(e.caller, e.callee): e.kind for e in g.edges}
    assert kinds[("recommendationservice", "productcatalogservice")] is EdgeKind.cause
    assert kinds[("frontend", "checkoutservice")] is EdgeKind.incident
    assert kinds[("checkoutservice", "paymentservice")] is EdgeKind.context


def test_boxes_do_not_overlap_and_fit_the_drawing() -> None:
    g = incident_graph(BOUTIQUE, STORM)
    by_layer: dict[int, list[float]] = {}
    for n in g.nodes:
        by_layer.setdefault(n.layer, []).append(n.x)
        assert NODE_W / 2 <= n.x <= g.width - NODE_W / 2
        assert 0 < n.y < g.height
    for xs in by_layer.values():
        xs.sort()
        assert all(b - a >= NODE_W for a, b in itertools.pairwise(xs))


def test_the_same_incident_gives_the_same_picture() -> None:
    assert incident_graph(BOUTIQUE, STORM) == incident_graph(BOUTIQUE, STORM)


def test_services_outside_the_topology_are_drawn_unconnected_on_their_own_row() -> None:
    inc = _incident(["frontend", "legacy-billing"], "frontend", [("frontend", True)])
    g = incident_graph(BOUTIQUE, inc)
    legacy = g.node("legacy-billing")
    assert not legacy.in_topology and legacy.role is Role.alerting
    assert legacy.layer == max(n.layer for n in g.nodes)
    assert all("legacy-billing" not in (e.caller, e.callee) for e in g.edges)


def test_a_cycle_shares_a_layer_and_its_edges_run_sideways() -> None:
    topo = Topology.from_edges("loop", [("a", "b"), ("b", "a"), ("a", "db")])
    g = incident_graph(topo, _incident(["a", "b", "db"], "db", [("db", True)]))
    assert g.node("a").layer == g.node("b").layer < g.node("db").layer
    sideways = [e for e in g.edges if {e.caller, e.callee} == {"a", "b"}]
    assert len(sideways) == 2
    assert all(len(e.points) == 2 and e.points[0][1] == e.points[1][1] for e in sideways)


def test_big_neighbourhoods_are_capped_and_counted() -> None:
    topo = Topology.from_edges("star", [(f"caller-{i:03}", "db") for i in range(100)])
    inc = _incident(["db", "caller-000"], "db", [("db", True)])
    g = incident_graph(topo, inc, max_nodes=12)
    assert len(g.nodes) == 12
    assert _roles(g)["db"] is Role.root and _roles(g)["caller-000"] is Role.alerting
    assert g.omitted == 101 - 12
    assert len(g.omitted_services) == g.omitted


def test_a_layer_too_wide_for_a_row_turns_the_layers_into_columns() -> None:
    topo = Topology.from_edges("star", [(f"caller-{i:03}", "db") for i in range(30)])
    inc = _incident([f"caller-{i:03}" for i in range(30)] + ["db"], "db", [("db", True)])
    assert incident_graph(topo, inc, max_nodes=5).flow is Flow.down
    g = incident_graph(topo, inc)
    assert g.flow is Flow.right
    db = g.node("db")
    ys = sorted(n.y for n in g.nodes if n.name != "db")
    assert all(b - a >= NODE_H for a, b in itertools.pairwise(ys))  # stacked, no overlap
    for e in g.edges:
        caller = g.node(e.caller)
        assert caller.x < db.x
        # from the caller's right side into the callee's left side
        assert e.points[0][0] == caller.x + NODE_W / 2 and e.points[-1][0] == db.x - NODE_W / 2
        assert db.y - NODE_H / 2 < e.points[-1][1] < db.y + NODE_H / 2
    assert g.width < 2 * NODE_W + 200 and g.height > 30 * NODE_H


def test_an_incident_without_ranking_still_has_a_picture() -> None:
    g = incident_graph(BOUTIQUE, _incident(["emailservice"], None))
    assert _roles(g)["emailservice"] is Role.alerting
    assert _roles(g)["checkoutservice"] is Role.neighbour
