"""A synthetic canonical-alert storm over a generated 1,000-service topology (``make bench``).

The topology is ``components`` independent layered microservice graphs (``layered_graph`` from
:mod:`benchmarks.synthetic`), their services renamed ``c<k>-...``, so the correlation
domains (weakly connected components) spread over the by-domain partitions and more than one
worker has work to do. The storm is :func:`benchmarks.synthetic.storm` over the union
graph: faults hit random services, symptoms propagate to callers/dependencies within the same
component, plus noise and unknown services, every firing alert later resolved.

Usage: ``python -m benchmarks.storm --services 1000 --alerts 10000 --out DIR`` writes
``topology.yaml`` and ``alerts.jsonl``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import yaml

from benchmarks.synthetic import layered_graph, storm
from pipeline.domain.schemas import encode
from pipeline.domain.topology import Topology


@dataclass
class Storm:
    topology: Topology
    #: (key, value) pairs: key = service (as a well-behaved emitter keys), value = JSON alert
    messages: list[tuple[bytes, bytes]]
    #: alert id -> the fault that caused it (noise: its own), see :func:`benchmarks.synthetic.storm`
    truth: dict[str, str] = field(default_factory=dict)

    @property
    def mean_size(self) -> float:
        return sum(len(v) for _, v in self.messages) / max(1, len(self.messages))


def topology(services: int = 1000, components: int = 8, seed: int = 7) -> Topology:
    """``components`` disjoint layered graphs of about ``services / components`` services."""
    graph: nx.DiGraph = nx.DiGraph()
    per = max(3, services // components)
    for k in range(components):
        part = layered_graph(per, seed=seed + k).graph
        graph.add_nodes_from(f"c{k}-{n}" for n in part.nodes)
        graph.add_edges_from((f"c{k}-{a}", f"c{k}-{b}") for a, b in part.edges)
    return Topology(name=f"bench-{services}", graph=graph)


def topology_yaml(topo: Topology) -> str:
    data = {
        "name": topo.name,
        "services": [{"name": s} for s in sorted(topo.graph.nodes)],
        "dependencies": [{"from": a, "to": b} for a, b in sorted(topo.graph.edges)],
    }
    return yaml.safe_dump(data, sort_keys=False)


def generate(alerts: int, services: int = 1000, components: int = 8, seed: int = 11) -> Storm:
    """``alerts`` canonical alerts (firing and resolved) in event-time order, encoded."""
    topo = topology(services, components)
    messages: list[tuple[bytes, bytes]] = []
    truth: dict[str, str] = {}
    for alert in storm(topo, alerts, seed=seed, truth=truth):
        alert.annotations = {"summary": f"{alert.name} on {alert.service}"}
        messages.append((alert.service.encode(), encode(alert)))
    return Storm(topology=topo, messages=messages, truth=truth)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.storm", description=__doc__)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--components", type=int, default=8)
    p.add_argument("--alerts", type=int, default=10_000)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    s = generate(args.alerts, args.services, args.components)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "topology.yaml").write_text(topology_yaml(s.topology))
    with (args.out / "alerts.jsonl").open("wb") as f:
        for _, value in s.messages:
            f.write(value + b"\n")
    print(f"{len(s.messages)} alerts, {len(s.topology.graph)} services, mean {s.mean_size:.0f} B")


if __name__ == "__main__":
    main()
