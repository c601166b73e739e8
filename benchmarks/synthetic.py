"""Synthetic service graphs and alert storms for the correlator's cost benchmark, and topologies
with edges removed for the insights benchmark.

Graphs are layered DAGs shaped like microservice systems: a few entry services, mid tiers
that call 1-4 services in deeper tiers, and a bottom tier of shared infrastructure (databases,
caches, queues) with many callers. Storms inject faults one after another (overlapping in
time) into random services: the faulty service alerts with saturation/errors, its callers
within a few hops alert with latency and errors, its dependencies see traffic drops, and
background noise alerts fire on random services. Every firing alert is resolved later.
Everything is seeded and deterministic.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import networkx as nx

from pipeline.domain.schemas import Alert, AlertStatus, Severity
from pipeline.domain.topology import Topology

T0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


def layered_graph(n: int, seed: int = 7) -> Topology:
    """A layered dependency DAG with ``n`` services."""
    rng = random.Random(seed)
    n_layers = max(3, min(8, n // 15 + 3))
    infra = max(1, n // 20)
    rest = n - infra
    sizes = [max(1, rest // (n_layers - 1))] * (n_layers - 1)
    sizes[-1] += rest - sum(sizes)
    sizes.append(infra)
    layers: list[list[str]] = []
    k = 0
    for li, size in enumerate(sizes):
        layers.append([f"svc-{li}-{k + i}" for i in range(size)])
        k += size
    edges: list[tuple[str, str]] = []
    for li, layer in enumerate(layers[:-1]):
        below = [s for lower in layers[li + 1 : li + 3] for s in lower]
        for s in layer:
            for d in rng.sample(below, min(len(below), rng.randint(1, 4))):
                edges.append((s, d))
            if rng.random() < 0.5:
                edges.append((s, rng.choice(layers[-1])))
    topo = Topology.from_edges(f"synthetic-{n}", edges)
    for layer in layers:
        for s in layer:
            topo.graph.add_node(s)
    return Topology(name=topo.name, graph=topo.graph)


def storm(
    topology: Topology,
    n_events: int,
    seed: int = 11,
    fault_every_s: float = 20.0,
    noise_share: float = 0.1,
    unknown_share: float = 0.02,
    truth: dict[str, str] | None = None,
) -> list[Alert]:
    """About ``n_events`` alert events (firing and resolved), sorted by event time.

    ``truth``, when given, is filled with alert id -> the fault that caused it (``f<n>``);
    noise and unknown-service alerts are each their own cause (``n<id>``)."""
    rng = random.Random(seed)
    g = topology.graph
    nodes = sorted(g.nodes)
    out: list[tuple[float, int, Alert]] = []
    seq = 0
    t = T0
    fault = 0

    def emit(service: str, name: str, sev: Severity, at: float, dur: float, pod: str) -> None:
        nonlocal seq
        labels = {"pod": pod, "alertname": name}
        seq += 1
        aid = f"s-{seq}"
        if truth is not None:
            cause = f"f{fault}" if pod not in ("n", "u") else f"n{seq}"
            truth[aid] = truth[f"s-{seq + 1}"] = cause
        out.append(
            (
                at,
                seq,
                Alert(
                    id=aid,
                    source="synthetic",
                    service=service,
                    name=name,
                    severity=sev,
                    status=AlertStatus.firing,
                    timestamp=datetime.fromtimestamp(at, UTC),
                    labels=labels,
                ),
            )
        )
        seq += 1
        out.append(
            (
                at + dur,
                seq,
                Alert(
                    id=f"s-{seq}",
                    source="synthetic",
                    service=service,
                    name=name,
                    severity=sev,
                    status=AlertStatus.resolved,
                    timestamp=datetime.fromtimestamp(at + dur, UTC),
                    labels=labels,
                ),
            )
        )

    while len(out) < n_events:
        fault += 1
        root = rng.choice(nodes)
        start = t + rng.uniform(0, 5)
        pods = rng.randint(1, 3)
        for p in range(pods):
            emit(root, "CPUSaturation", Severity.critical, start, rng.uniform(120, 400), f"{p}")
            emit(root, "ErrorRateHigh", Severity.error, start + 10, rng.uniform(120, 300), f"{p}")
        frontier = {root}
        seen = {root}
        for hop in range(1, 4):
            nxt: set[str] = set()
            for s in frontier:
                nxt.update(c for c in g.predecessors(s) if c not in seen)
            seen |= nxt
            for c in sorted(nxt):
                if rng.random() < 0.8:
                    at = start + hop * rng.uniform(10, 40)
                    emit(c, "HighLatencyP99", Severity.warning, at, rng.uniform(120, 300), "0")
            frontier = nxt
        for d in sorted(g.successors(root)):
            if rng.random() < 0.5:
                at = start + rng.uniform(30, 90)
                emit(d, "TrafficDrop", Severity.warning, at, rng.uniform(120, 240), "0")
        n_noise = max(1, int(len(seen) * noise_share))
        for _ in range(n_noise):
            s = rng.choice(nodes)
            emit(s, "MemoryPressure", Severity.info, start + rng.uniform(0, 60), 120, "n")
        if rng.random() < unknown_share * 10:
            emit(f"unknown-{fault % 50}", "Down", Severity.critical, start + 5, 180, "u")
        t += fault_every_s
    out.sort(key=lambda x: (x[0], x[1]))
    return [a for _, _, a in out[:n_events]]


def remove_edges(
    topology: Topology, k: int, seed: int = 5
) -> tuple[Topology, list[tuple[str, str]]]:
    """``topology`` with ``k`` random edges removed (fewer when no more qualify): the graph a
    correlator would be given when its topology file misses calls. Only edges whose removal
    leaves the graph weakly connected and its two services with no path between them in either
    direction are removed, so each removal really is missing knowledge (with a path left, the
    graph still relates the two services)."""
    rng = random.Random(seed)
    g = topology.graph.copy()
    removed: list[tuple[str, str]] = []
    for a, b in rng.sample(sorted(g.edges), g.number_of_edges()):
        if len(removed) >= k:
            break
        g.remove_edge(a, b)
        if nx.is_weakly_connected(g) and not nx.has_path(g, a, b) and not nx.has_path(g, b, a):
            removed.append((a, b))
        else:
            g.add_edge(a, b)
    return Topology(
        name=f"{topology.name}-minus-{len(removed)}", graph=g, teams=topology.teams
    ), removed
