"""The service-dependency graph (NetworkX) and correlation domains.

Edges point from caller to callee: ``from`` depends on ``to``. A failure in ``to`` shows up
as symptoms in ``from`` and further upstream (its transitive callers, the blast radius).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import yaml


class TopologyError(ValueError):
    """The topology file is malformed; the message names the problem."""


@dataclass
class Topology:
    """A named dependency graph; services absent from it are isolated nodes, never errors."""

    name: str
    graph: nx.DiGraph
    teams: dict[str, str] = field(default_factory=dict)
    _domain_of: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for component in nx.weakly_connected_components(self.graph):
            label = f"{self.name}/{min(component)}"
            for node in component:
                self._domain_of[node] = label

    @classmethod
    def from_dict(cls, data: Any, source: str = "<topology>") -> Topology:
        if not isinstance(data, dict):
            raise TopologyError(f"{source}: expected a mapping with 'services' and 'dependencies'")
        name = str(data.get("name") or Path(source).stem)
        graph: nx.DiGraph = nx.DiGraph()
        teams: dict[str, str] = {}
        services = data.get("services") or []
        if not isinstance(services, list):
            raise TopologyError(f"{source}: 'services' must be a list")
        for i, svc in enumerate(services):
            if isinstance(svc, str):
                svc = {"name": svc}
            if not isinstance(svc, dict) or not svc.get("name"):
                raise TopologyError(f"{source}: services[{i}] needs a 'name'")
            graph.add_node(str(svc["name"]))
            if svc.get("team"):
                teams[str(svc["name"])] = str(svc["team"])
        deps = data.get("dependencies") or []
        if not isinstance(deps, list):
            raise TopologyError(f"{source}: 'dependencies' must be a list")
        for i, dep in enumerate(deps):
            if not isinstance(dep, dict) or not dep.get("from") or not dep.get("to"):
                raise TopologyError(f"{source}: dependencies[{i}] needs 'from' and 'to'")
            graph.add_edge(str(dep["from"]), str(dep["to"]))
        return cls(name=name, graph=graph, teams=teams)

    @classmethod
    def load(cls, path: str | Path) -> Topology:
        p = Path(path)
        if not p.is_file():
            raise TopologyError(f"topology file {str(p)!r} does not exist")
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise TopologyError(f"{p}: not valid YAML ({exc.__class__.__name__})") from None
        return cls.from_dict(data, str(p))

    @classmethod
    def from_edges(cls, name: str, edges: Iterable[tuple[str, str]]) -> Topology:
        graph: nx.DiGraph = nx.DiGraph()
        graph.add_edges_from(edges)
        return cls(name=name, graph=graph)

    def __contains__(self, service: object) -> bool:
        return service in self.graph

    @property
    def services(self) -> list[str]:
        return sorted(self.graph.nodes)

    def dependencies(self, service: str) -> set[str]:
        """Direct callees of ``service`` (what it depends on)."""
        return set(self.graph.successors(service)) if service in self.graph else set()

    def callers(self, service: str) -> set[str]:
        """Direct callers of ``service``."""
        return set(self.graph.predecessors(service)) if service in self.graph else set()

    def domain(self, service: str, labels: dict[str, str] | None = None) -> str:
        """Correlation domain: an explicit ``domain`` label, else the service's weakly
        connected component, else (unknown service) the service itself."""
        if labels and labels.get("domain"):
            return labels["domain"]
        return self._domain_of.get(service, f"{self.name}/{service}")

    def team(self, service: str) -> str | None:
        return self.teams.get(service)
