"""The picture of an incident: its services and their neighbours in the service graph, laid out
in layers (callers above, or left of, the services they call), ready to be drawn.

Which services: the root cause, the other root-cause candidates (alerting or silent), the
services with member alerts (most alerts first) and then their direct callers and callees
(those next to most incident services first), at most ``max_nodes`` in all; the rest are
counted in ``omitted``. Services the topology does not know are drawn unconnected.

Layout (the classic layered drawing of directed graphs): strongly connected parts share a
layer, every other service sits one layer below its deepest caller
(``networkx.topological_generations`` of the condensation); edges that skip layers get
bend points, one per layer they cross (narrower than a service); the order within layers
is improved by barycenter sweeps (fewer crossings), and each layer is centred. Layers are
rows (callers on top) unless one would be wider than ``MAX_ROW_W``; then they are columns
(callers on the left), so that a storm over many services grows down the page instead of
shrinking to fit its width. Deterministic: the same topology and incident give the same
picture.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

import networkx as nx

from pipeline.domain.schemas import AlertStatus, Incident
from pipeline.domain.topology import Topology

#: layers as rows: room along a row for a service and for a bend point, and between rows
SLOT_W = 200.0
BEND_W = 44.0
LAYER_H = 120.0
#: a row wider than this turns the layers into columns (pixels)
MAX_ROW_W = 1100.0
#: layers as columns: room along a column for a service and for a bend point, and between
#: columns (pixels)
SLOT_H = 64.0
BEND_H = 18.0
LAYER_W = 272.0
#: node box size (pixels)
NODE_W = 176.0
NODE_H = 48.0
#: edges leaving or entering one side of a box: at most this far apart, and this far from
#: its corners (pixels)
PORT_GAP = 16.0
PORT_INSET = 24.0
PORT_GAP_V = 7.0
PORT_INSET_V = 10.0
#: margin around the drawing (pixels)
MARGIN = 24.0
#: barycenter sweeps (each one down and one up)
SWEEPS = 4


class Role(StrEnum):
    """What a service is in the incident, most important first."""

    root = "root"  # the ranked (or confirmed) root cause
    candidate = "candidate"  # another root-cause candidate
    alerting = "alerting"  # raised member alerts, not a candidate
    neighbour = "neighbour"  # no alerts: a caller or callee of an incident service


class Flow(StrEnum):
    """Which way the layers go: ``down`` (rows, callers on top) or ``right`` (columns,
    callers on the left)."""

    down = "down"
    right = "right"


class EdgeKind(StrEnum):
    cause = "cause"  # into the root cause, from an incident service
    incident = "incident"  # between two incident services
    context = "context"  # touches a neighbour


@dataclass(frozen=True)
class GraphNode:
    name: str
    role: Role
    #: centre of the box (pixels)
    x: float
    y: float
    layer: int
    alerts: int = 0
    firing: int = 0
    #: every listed member alert of the service is a suppressed symptom of the root cause
    suppressed: bool = False
    #: rank among the root-cause candidates (1 = best) and score, when a candidate
    rank: int | None = None
    score: float | None = None
    in_topology: bool = True


@dataclass(frozen=True)
class GraphEdge:
    """``caller`` depends on ``callee``; ``points`` run from the caller's box to the
    callee's, through one bend point per layer crossed."""

    caller: str
    callee: str
    kind: EdgeKind
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class IncidentGraph:
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    width: float
    height: float
    flow: Flow = Flow.down
    #: services of the incident (or neighbours) left out to respect ``max_nodes``
    omitted: int = 0
    omitted_services: list[str] = field(default_factory=list)

    def node(self, name: str) -> GraphNode:
        return next(n for n in self.nodes if n.name == name)


def _alert_counts(inc: Incident) -> tuple[Counter[str], Counter[str]]:
    """Member alerts per service, and how many of them fire, from the incident's counts
    (every member) or else its listed members."""
    total: Counter[str] = Counter()
    firing: Counter[str] = Counter()
    if inc.alert_counts:
        for c in inc.alert_counts:
            total[c.service] += c.count
            firing[c.service] += c.firing
    else:
        for ref in inc.alerts:
            total[ref.service] += 1
            firing[ref.service] += ref.status is AlertStatus.firing
    return total, firing


def _suppressed_services(inc: Incident) -> set[str]:
    """Services whose listed members are all suppressed symptoms."""
    seen: dict[str, bool] = {}
    for ref in inc.alerts:
        seen[ref.service] = seen.get(ref.service, True) and ref.suppressed
    return {s for s, all_suppressed in seen.items() if all_suppressed}


def _choose(
    topology: Topology, inc: Incident, alerts: Counter[str], max_nodes: int
) -> tuple[dict[str, Role], list[str]]:
    """The services to draw with their roles, and those left out."""
    focus: dict[str, Role] = {}
    if inc.root_cause:
        focus[inc.root_cause] = Role.root
    for cand in inc.root_cause_candidates:
        focus.setdefault(cand.service, Role.candidate)
    alerting = sorted(set(inc.services) | set(alerts), key=lambda s: (-alerts[s], s))
    for service in alerting:
        focus.setdefault(service, Role.alerting)
    chosen = dict(list(focus.items())[:max_nodes])
    left_out = [s for s in focus if s not in chosen]
    graph = topology.graph
    near: Counter[str] = Counter()
    for service in chosen:
        if service in graph:
            for other in (*graph.predecessors(service), *graph.successors(service)):
                if other not in focus:
                    near[other] += 1
    neighbours = sorted(near, key=lambda s: (-near[s], s))
    room = max(0, max_nodes - len(chosen))
    for service in neighbours[:room]:
        chosen[service] = Role.neighbour
    left_out.extend(neighbours[room:])
    return chosen, left_out


def _layers(sub: nx.DiGraph) -> dict[str, int]:
    """Layer of each service: strongly connected parts together, each below its callers;
    services with no edge in the picture on a row of their own at the bottom."""
    connected = [n for n in sub.nodes if sub.degree(n) > 0]
    cond = nx.condensation(sub.subgraph(connected))
    layer: dict[str, int] = {}
    depth = 0
    for depth, generation in enumerate(nx.topological_generations(cond)):
        for comp in generation:
            for service in cond.nodes[comp]["members"]:
                layer[service] = depth
    bottom = depth + 1 if layer else 0
    for n in sub.nodes:
        layer.setdefault(n, bottom)
    return layer


def _order(layered: nx.DiGraph, layer: dict[str, int], n_layers: int) -> list[list[str]]:
    """Nodes of each layer left to right: by name, then barycenter sweeps down and up."""
    rows: list[list[str]] = [[] for _ in range(n_layers)]
    for n in sorted(layered.nodes, key=_sort_key):
        rows[layer[n]].append(n)

    def sweep(i: int, neighbours_of: nx.DiGraph, ref: list[str]) -> None:
        where = {n: k for k, n in enumerate(ref)}
        current = {n: k for k, n in enumerate(rows[i])}

        def centre(n: str) -> float:
            pos = [where[m] for m in neighbours_of[n] if m in where]
            return sum(pos) / len(pos) if pos else float(current[n])

        rows[i].sort(key=lambda n: (centre(n), current[n]))

    undirected = layered.to_undirected(as_view=True)
    for _ in range(SWEEPS):
        for i in range(1, n_layers):
            sweep(i, undirected, rows[i - 1])
        for i in range(n_layers - 2, -1, -1):
            sweep(i, undirected, rows[i + 1])
    return rows


def _sort_key(n: str) -> tuple[str, str]:
    """Real services by name; bend points (``\\0``-prefixed) after them."""
    return (n.split("\0")[1] if n.startswith("\0") else n, n)


def _bend(caller: str, callee: str, k: int) -> str:
    return f"\0{caller}\0{callee}\0{k}"


def incident_graph(topology: Topology, inc: Incident, *, max_nodes: int = 40) -> IncidentGraph:
    """The picture of ``inc`` on ``topology`` (see the module docstring)."""
    alerts, firing = _alert_counts(inc)
    roles, left_out = _choose(topology, inc, alerts, max(1, max_nodes))
    graph = topology.graph
    sub: nx.DiGraph = nx.DiGraph()
    sub.add_nodes_from(sorted(roles))
    sub.add_edges_from(
        (u, v) for u, v in graph.subgraph(roles.keys()).edges if u != v and u in roles
    )
    layer = _layers(sub)
    n_layers = max(layer.values(), default=0) + 1
    # every edge spanning layers gets one bend point per layer it crosses
    layered: nx.DiGraph = nx.DiGraph()
    layered.add_nodes_from(sub.nodes)
    chains: dict[tuple[str, str], list[str]] = {}
    for u, v in sorted(sub.edges):
        chain = [u]
        for k, lyr in enumerate(range(layer[u] + 1, layer[v])):
            bend = _bend(u, v, k)
            layer[bend] = lyr
            chain.append(bend)
        chain.append(v)
        nx.add_path(layered, chain)
        chains[(u, v)] = chain
    rows = _order(layered, layer, n_layers)
    widest = max((_extent(row, SLOT_W, BEND_W) for row in rows), default=0.0)
    flow = Flow.down if widest <= MAX_ROW_W else Flow.right
    positions = _positions(rows, flow)
    suppressed = _suppressed_services(inc)
    nodes = [
        _node(s, roles[s], positions[s], layer[s], alerts, firing, s in suppressed, inc, topology)
        for s in sorted(roles, key=lambda s: (layer[s], positions[s][0]))
    ]
    ports = _ports(chains, positions, layer, flow)
    edges = [
        GraphEdge(
            u,
            v,
            _edge_kind(roles[u], roles[v]),
            _route(chains[(u, v)], positions, layer, ports[(u, v)], flow),
        )
        for u, v in sorted(sub.edges)
    ]
    width = max((p[0] for p in positions.values()), default=0.0) + NODE_W / 2 + MARGIN
    height = max((p[1] for p in positions.values()), default=0.0) + NODE_H / 2 + MARGIN
    return IncidentGraph(
        nodes=nodes,
        edges=edges,
        width=round(width, 1),
        height=round(height, 1),
        flow=flow,
        omitted=len(left_out),
        omitted_services=left_out,
    )


def _extent(row: list[str], slot: float, bend: float) -> float:
    """Room a layer takes along itself."""
    return sum(bend if n.startswith("\0") else slot for n in row)


def _positions(rows: list[list[str]], flow: Flow) -> dict[str, tuple[float, float]]:
    """Pixel centres: services a slot apart and bend points less along their layer, every
    layer centred on the longest, layers a layer's room apart."""
    slot, bend = (SLOT_W, BEND_W) if flow is Flow.down else (SLOT_H, BEND_H)
    box_along = NODE_W if flow is Flow.down else NODE_H
    box_across = NODE_H if flow is Flow.down else NODE_W
    gap = LAYER_H if flow is Flow.down else LAYER_W
    extents = [_extent(row, slot, bend) for row in rows]
    longest = max(extents, default=0.0)
    out: dict[str, tuple[float, float]] = {}
    for i, (row, extent) in enumerate(zip(rows, extents, strict=True)):
        along = MARGIN - (slot - box_along) / 2 + (longest - extent) / 2
        across = round(MARGIN + box_across / 2 + i * gap, 1)
        for n in row:
            room = bend if n.startswith("\0") else slot
            mid = round(along + room / 2, 1)
            out[n] = (mid, across) if flow is Flow.down else (across, mid)
            along += room
    return out


def _node(
    name: str,
    role: Role,
    xy: tuple[float, float],
    layer: int,
    alerts: Counter[str],
    firing: Counter[str],
    suppressed: bool,
    inc: Incident,
    topology: Topology,
) -> GraphNode:
    rank = score = None
    for i, cand in enumerate(inc.root_cause_candidates):
        if cand.service == name:
            rank, score = i + 1, cand.score
            break
    return GraphNode(
        name=name,
        role=role,
        x=xy[0],
        y=xy[1],
        layer=layer,
        alerts=alerts[name],
        firing=firing[name],
        suppressed=suppressed and role is not Role.root,
        rank=rank,
        score=score,
        in_topology=name in topology,
    )


def _edge_kind(caller: Role, callee: Role) -> EdgeKind:
    if Role.neighbour in (caller, callee):
        return EdgeKind.context
    if callee is Role.root:
        return EdgeKind.cause
    return EdgeKind.incident


def _ports(
    chains: dict[tuple[str, str], list[str]],
    positions: dict[str, tuple[float, float]],
    layer: dict[str, int],
    flow: Flow,
) -> dict[tuple[str, str], tuple[float, float]]:
    """Where each edge between layers leaves its caller's box and enters its callee's, as
    offsets along the box side from its middle: a box's edges spread along its side in the
    order of where they come from or go to, so that they do not all meet in one point."""
    axis = 0 if flow is Flow.down else 1
    length, inset, gap = (
        (NODE_W, PORT_INSET, PORT_GAP) if flow is Flow.down else (NODE_H, PORT_INSET_V, PORT_GAP_V)
    )
    out: dict[str, list[tuple[float, tuple[str, str]]]] = {}
    into: dict[str, list[tuple[float, tuple[str, str]]]] = {}
    for (u, v), chain in chains.items():
        if layer[u] != layer[v]:
            out.setdefault(u, []).append((positions[chain[1]][axis], (u, v)))
            into.setdefault(v, []).append((positions[chain[-2]][axis], (u, v)))
    offsets: dict[tuple[str, str], list[float]] = {e: [0.0, 0.0] for e in chains}
    for side, groups in ((0, out), (1, into)):
        for edges in groups.values():
            edges.sort()
            m = len(edges)
            step = min(gap, (length - 2 * inset) / (m - 1)) if m > 1 else 0.0
            for k, (_, e) in enumerate(edges):
                offsets[e][side] = (k - (m - 1) / 2) * step
    return {e: (o[0], o[1]) for e, o in offsets.items()}


def _route(
    chain: list[str],
    positions: dict[str, tuple[float, float]],
    layer: dict[str, int],
    ports: tuple[float, float],
    flow: Flow,
) -> tuple[tuple[float, float], ...]:
    """Points of an edge: leaving its caller's box, through its bend points, entering its
    callee's box (bottom to top, or right side to left side, between layers; within a
    layer, side to side in rows and right side to right side in columns)."""
    u, v = chain[0], chain[-1]
    (ux, uy), (vx, vy) = positions[u], positions[v]
    w, h = NODE_W / 2, NODE_H / 2
    if layer[u] == layer[v]:  # a cycle within a layer
        if flow is Flow.right:
            return ((ux + w, uy), (vx + w, vy))
        sign = 1.0 if vx > ux else -1.0
        return ((ux + sign * w, uy), (vx - sign * w, vy))
    if flow is Flow.down:
        first, last = (ux + ports[0], uy + h), (vx + ports[1], vy - h)
    else:
        first, last = (ux + w, uy + ports[0]), (vx - w, vy + ports[1])
    points = [first, *(positions[b] for b in chain[1:-1]), last]
    return tuple((round(x, 1), round(y, 1)) for x, y in points)
