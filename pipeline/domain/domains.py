"""Correlation domains: which correlator instance (by-domain partition) owns each service.

Today a domain is a weakly connected component of the topology, so a connected estate is one
domain on one worker. A :class:`DomainMap` may split the largest component into ``k``
domains (issue 14); a cross-domain merge stage (:mod:`pipeline.domain.merge`) then unites the
per-domain incidents one correlator would have made one.

* Splitting: NetworkX ``louvain_communities(seed=0)`` on a *canonical* undirected view
  (nodes and edges inserted sorted, self-loops dropped), communities packed largest first into
  ``k`` domains of at most ``ceil((1 + slack) * n / k)`` services (a community that fits
  nowhere is split by Louvain at resolution 2, else by a Kernighan-Lin bisection, and its
  pieces queued again). The result depends only on the sets of services and edges: not on
  ``PYTHONHASHSEED`` nor on the order of the topology file.
* Other components stay domains of their own, labelled as today
  (``<topology>/<smallest service>``); with ``k = 1`` every label is today's.
* A domain's label is ``<topology>/<smallest service of the domain>``.
* Each domain has an explicit by-domain partition index (split domains ``0..k-1`` in label
  order; other components on the partition holding fewest services), not a hash: with ``k``
  close to the partition count a hash leaves partitions empty.
* :func:`sticky_update` carries a map over to a changed topology without moving any known
  service; recompute (a new version) only when the cut or balance drifted too far.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from typing import Literal

import msgspec
import networkx as nx

from pipeline.domain.topology import Topology

#: ``"auto"`` splits the largest component into domains of at least this many services
AUTO_SERVICES_PER_DOMAIN = 250


class DomainMap(msgspec.Struct, kw_only=True):
    """A versioned assignment of services to correlation domains and domains to partitions."""

    version: int
    #: domains the largest component was split into (1: not split, today's domains)
    k: int
    topology: str
    #: service -> domain label
    domains: dict[str, str]
    #: domain label -> by-domain partition index (``0 .. partition_count - 1``)
    partitions: dict[str, int]

    @property
    def partition_count(self) -> int:
        return max(self.partitions.values(), default=0) + 1

    def domain(self, service: str, labels: dict[str, str] | None = None) -> str:
        """The correlation domain of an alert: an explicit ``domain`` label, else the map,
        else (service missing from the topology) the service itself (``Topology.domain``)."""
        if labels and labels.get("domain"):
            return labels["domain"]
        return self.domains.get(service, f"{self.topology}/{service}")

    def partition(self, domain: str) -> int:
        """The partition of ``domain``: from the map; a domain the map does not know (an
        explicit label, a service missing from the topology) by CRC-32 of its label."""
        p = self.partitions.get(domain)
        if p is None:
            p = zlib.crc32(domain.encode()) % self.partition_count
        return p

    def members(self) -> dict[str, list[str]]:
        """Domain label -> its services, sorted."""
        out: dict[str, list[str]] = {d: [] for d in sorted(self.partitions)}
        for svc in sorted(self.domains):
            out[self.domains[svc]].append(svc)
        return out

    def apply(self, topology: Topology) -> Topology:
        """A view of ``topology`` (same graph) whose ``domain()`` follows this map, for the
        per-domain correlators (they label incidents with it)."""
        view = Topology(name=topology.name, graph=topology.graph, teams=topology.teams)
        view._domain_of.clear()
        view._domain_of.update(self.domains)
        return view

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> DomainMap:
        return msgspec.json.decode(data, type=cls)


# ------------------------------------------------------------------------------ building


def canonical(graph: nx.Graph | nx.DiGraph) -> nx.Graph:
    """Undirected, self-loop-free, nodes and edges inserted sorted: same sets, same graph."""
    g: nx.Graph = nx.Graph()
    g.add_nodes_from(sorted(graph.nodes))
    g.add_edges_from(sorted({_edge(a, b) for a, b in graph.edges if a != b}))
    return g


def _edge(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def _components(g: nx.Graph) -> list[set[str]]:
    """Connected components, largest first (ties: smallest service first)."""
    return sorted((set(c) for c in nx.connected_components(g)), key=lambda c: (-len(c), min(c)))


def choose_k(topology: Topology, requested: int | Literal["auto"]) -> int:
    """``requested``, or for ``"auto"``: 1 unless the largest component has more than
    :data:`AUTO_SERVICES_PER_DOMAIN` services, then as many domains of at least that many."""
    if requested != "auto":
        if requested < 1:
            raise ValueError(f"domains must be >= 1 or 'auto', not {requested}")
        return requested
    comps = _components(canonical(topology.graph))
    largest = len(comps[0]) if comps else 0
    return max(1, largest // AUTO_SERVICES_PER_DOMAIN)


def build_domain_map(
    topology: Topology,
    requested: int | Literal["auto"] = 1,
    *,
    slack: float = 0.05,
    version: int = 1,
) -> DomainMap:
    """The domain map of ``topology`` with the largest component split into ``requested``
    domains (``"auto"``: :func:`choose_k`); deterministic (see module docstring)."""
    k = choose_k(topology, requested)
    g = canonical(topology.graph)
    comps = _components(g)
    parts: list[set[str]] = []
    rest = comps
    if comps and k > 1:
        main = comps[0]
        k = min(k, len(main))
        parts = louvain_packed(canonical(g.subgraph(main)), k, slack=slack)
        rest = comps[1:]
    else:
        k = 1
    domains: dict[str, str] = {}
    partitions: dict[str, int] = {}
    load = [0] * max(1, len(parts))
    for i, part in enumerate(sorted(parts, key=min)):
        label = f"{topology.name}/{min(part)}"
        partitions[label] = i
        load[i] = len(part)
        for s in part:
            domains[s] = label
    for comp in rest:
        label = f"{topology.name}/{min(comp)}"
        p = min(range(len(load)), key=lambda i: (load[i], i))
        partitions[label] = p
        load[p] += len(comp)
        for s in comp:
            domains[s] = label
    return DomainMap(
        version=version,
        k=k,
        topology=topology.name,
        domains=dict(sorted(domains.items())),
        partitions=dict(sorted(partitions.items())),
    )


def louvain_packed(g: nx.Graph, k: int, *, slack: float = 0.05, seed: int = 0) -> list[set[str]]:
    """Louvain communities of the canonical graph ``g`` packed into ``k`` domains of at most
    ``ceil((1 + slack) * n / k)`` services.

    Communities are placed largest first into the domain they share most edges with among
    those with room (ties: the lightest, then the lowest index); one that fits nowhere is
    split (Louvain on its subgraph at resolution 2, else a Kernighan-Lin bisection) and its
    pieces are queued again.
    """
    n = g.number_of_nodes()
    cap = max(1, math.ceil((1 + slack) * n / k))
    queue = sorted(
        (set(c) for c in nx.community.louvain_communities(g, seed=seed)),
        key=lambda c: (-len(c), min(c)),
    )
    bins: list[set[str]] = [set() for _ in range(k)]
    where: dict[str, int] = {}
    while queue:
        c = queue.pop(0)
        links: Counter[int] = Counter()
        for u in c:
            for v in g.adj[u]:
                b = where.get(v)
                if b is not None:
                    links[b] += 1
        fits = [i for i in range(k) if len(bins[i]) + len(c) <= cap]
        if fits:
            best = max(fits, key=lambda i: (links[i], -len(bins[i]), -i))
            bins[best] |= c
            for u in c:
                where[u] = best
            continue
        queue.extend(_split(g, c, seed))
        queue.sort(key=lambda x: (-len(x), min(x)))
    return [b for b in bins if b]


def _split(g: nx.Graph, community: set[str], seed: int) -> list[set[str]]:
    """Two or more pieces of ``community`` (more than one service)."""
    sub = canonical(g.subgraph(community))
    pieces = [set(p) for p in nx.community.louvain_communities(sub, seed=seed, resolution=2.0)]
    if len(pieces) < 2:
        a, b = nx.community.kernighan_lin_bisection(sub, seed=seed)
        pieces = [set(a), set(b)]
    return pieces


# ------------------------------------------------------------------------------ updates


def sticky_update(old: DomainMap, topology: Topology) -> DomainMap:
    """``old`` carried over to a changed ``topology`` without moving a known service.

    Services gone from the topology leave the map; a new service joins the domain most of
    its already placed neighbours are in (ties: the domain with fewer services, then the
    smaller label), in order of name, repeated until no new service has a placed neighbour;
    a component of new services only becomes a domain of its own (on the partition holding
    fewest services). The version goes up by one.
    """
    g = canonical(topology.graph)
    dom = {s: d for s, d in old.domains.items() if s in g}
    sizes: Counter[str] = Counter(dom.values())
    pending = sorted(s for s in g.nodes if s not in dom)
    while pending:
        placed: list[tuple[str, str]] = []
        for s in pending:
            votes = Counter(dom[v] for v in g.adj[s] if v in dom)
            if votes:
                placed.append((s, min(votes, key=lambda d: (-votes[d], sizes[d], d))))
        if not placed:
            break
        for s, d in placed:
            dom[s] = d
            sizes[d] += 1
        done = {s for s, _ in placed}
        pending = [s for s in pending if s not in done]
    partitions = {d: p for d, p in old.partitions.items() if d in sizes}
    n_parts = old.partition_count
    load = [0] * n_parts
    for d, p in partitions.items():
        load[p] += sizes[d]
    new_comps = _components(canonical(g.subgraph(pending))) if pending else []
    for comp in new_comps:
        label = f"{topology.name}/{min(comp)}"
        p = min(range(n_parts), key=lambda i: (load[i], i))
        partitions[label] = p
        load[p] += len(comp)
        for s in comp:
            dom[s] = label
    return DomainMap(
        version=old.version + 1,
        k=old.k,
        topology=old.topology,
        domains=dict(sorted(dom.items())),
        partitions=dict(sorted(partitions.items())),
    )


# ------------------------------------------------------------------------------ metrics


def cut_share(topology: Topology, dmap: DomainMap) -> float:
    """Share of dependency edges (self-loops aside) between two domains."""
    edges = [(a, b) for a, b in topology.graph.edges if a != b]
    cut = sum(1 for a, b in edges if dmap.domain(a) != dmap.domain(b))
    return cut / max(1, len(edges))


def balance(dmap: DomainMap) -> float:
    """Largest domain / ideal size ``n / k`` over the ``k`` largest domains (1.0: perfect)."""
    top = sorted(Counter(dmap.domains.values()).values(), reverse=True)[: dmap.k]
    n = sum(top)
    return max(top) / (n / dmap.k) if n else 1.0
