"""Precomputed, cached views of the service graph for the correlator's hot path.

The correlator asks the same questions for every alert ("which services are within two
hops upstream of X?"). Answering them with NetworkX calls per alert would dominate the cost,
so this index computes each answer once per service, lazily, and keeps it in plain dicts.
Memory is bounded by the services that have actually alerted (each cached answer is at most
the hop-limited neighbourhood), not by the number of alerts.
"""

from __future__ import annotations

from collections import deque

from pipeline.domain.topology import Topology


class GraphIndex:
    """Hop-limited callers/dependencies and full blast radius, cached per service.

    Edges point from caller to callee (``from`` depends on ``to``). ``up`` = callers
    (where a failure's symptoms show), ``down`` = dependencies (where a cause may hide).
    """

    __slots__ = (
        "_adj",
        "_anc",
        "_deps1",
        "_down",
        "_learned_of",
        "_near",
        "_pred",
        "_succ",
        "_up",
        "hops",
        "learned",
        "origins",
    )

    def __init__(self, topology: Topology, hops: int) -> None:
        g = topology.graph
        self.hops = hops
        self._succ: dict[str, tuple[str, ...]] = {n: tuple(g.successors(n)) for n in g.nodes}
        self._pred: dict[str, tuple[str, ...]] = {n: tuple(g.predecessors(n)) for n in g.nodes}
        self._adj: dict[str, tuple[str, ...]] = {
            n: tuple(set(self._succ[n]) | set(self._pred[n])) for n in g.nodes
        }
        self._near: dict[str, dict[str, int]] = {}
        self._up: dict[str, dict[str, int]] = {}
        self._down: dict[str, dict[str, int]] = {}
        self._anc: dict[str, frozenset[str]] = {}
        self._deps1: dict[str, frozenset[str]] = {}
        #: calls added after construction (learned from alerts), in the order added
        self.learned: list[tuple[str, str]] = []
        self._learned_of: dict[str, list[tuple[str, str]]] = {}
        #: where a learned call was learned from, when not from alert labels
        self.origins: dict[tuple[str, str], str] = {}

    def add_edge(self, caller: str, callee: str, origin: str | None = None) -> bool:
        """Add the call ``caller -> callee`` (services new to the graph become known),
        learned from ``origin`` (None: alert labels); returns False when the graph already
        had it (a learned call takes the newer ``origin``). Clears every cached answer."""
        if callee in self._succ.get(caller, ()):
            if origin is not None and (caller, callee) in self._learned_of.get(caller, ()):
                self.origins[(caller, callee)] = origin
            return False
        for n in (caller, callee):
            if n not in self._succ:
                self._succ[n] = self._pred[n] = self._adj[n] = ()
        self._succ[caller] = (*self._succ[caller], callee)
        self._pred[callee] = (*self._pred[callee], caller)
        if callee not in self._adj[caller]:
            self._adj[caller] = (*self._adj[caller], callee)
            self._adj[callee] = (*self._adj[callee], caller)
        for cache in (self._near, self._up, self._down, self._anc, self._deps1):
            cache.clear()
        edge = (caller, callee)
        self.learned.append(edge)
        self._learned_of.setdefault(caller, []).append(edge)
        self._learned_of.setdefault(callee, []).append(edge)
        if origin is not None:
            self.origins[edge] = origin
        return True

    def remove_edge(self, caller: str, callee: str) -> bool:
        """Take the learned call ``caller -> callee`` out of the graph again (its services
        stay known); False when it is not a learned call (topology edges stay). Clears every
        cached answer."""
        edge = (caller, callee)
        if edge not in self._learned_of.get(caller, ()):
            return False
        self._succ[caller] = tuple(n for n in self._succ[caller] if n != callee)
        self._pred[callee] = tuple(n for n in self._pred[callee] if n != caller)
        if caller not in self._succ[callee]:  # no call the other way keeps them adjacent
            self._adj[caller] = tuple(n for n in self._adj[caller] if n != callee)
            self._adj[callee] = tuple(n for n in self._adj[callee] if n != caller)
        for cache in (self._near, self._up, self._down, self._anc, self._deps1):
            cache.clear()
        self.learned.remove(edge)
        for n in (caller, callee):
            self._learned_of[n].remove(edge)
        self.origins.pop(edge, None)
        return True

    def learned_calls(self, service: str) -> list[tuple[str, str]]:
        """The learned calls (not in the topology) ``service`` makes or takes."""
        return self._learned_of.get(service, [])

    def learned_from(self, edge: tuple[str, str]) -> str:
        """Where the learned call ``edge`` was learned from."""
        return self.origins.get(edge, "alert labels")

    def known(self, service: str) -> bool:
        return service in self._succ

    def edgeless(self, service: str) -> bool:
        """Is ``service`` listed in the graph but without any edge?"""
        return self._adj.get(service) == ()

    def unplaced(self, service: str) -> bool:
        """Does the graph say nothing about ``service`` (unknown, or known with no edges)?"""
        return not self._adj.get(service)

    @staticmethod
    def _bfs(start: str, adj: dict[str, tuple[str, ...]], limit: int | None) -> dict[str, int]:
        dist: dict[str, int] = {}
        if start not in adj:
            return dist
        queue: deque[tuple[str, int]] = deque([(start, 0)])
        seen = {start}
        while queue:
            node, d = queue.popleft()
            if limit is not None and d >= limit:
                continue
            for nxt in adj[node]:
                if nxt not in seen:
                    seen.add(nxt)
                    dist[nxt] = d + 1
                    queue.append((nxt, d + 1))
        return dist

    def up(self, service: str) -> dict[str, int]:
        """Transitive callers within the hop limit -> hops (excludes the service itself)."""
        r = self._up.get(service)
        if r is None:
            r = self._up[service] = self._bfs(service, self._pred, self.hops)
        return r

    def down(self, service: str) -> dict[str, int]:
        """Transitive dependencies within the hop limit -> hops (excludes the service itself)."""
        r = self._down.get(service)
        if r is None:
            r = self._down[service] = self._bfs(service, self._succ, self.hops)
        return r

    def near(self, service: str) -> dict[str, int]:
        """Services within the hop limit ignoring edge direction -> hops (excludes itself).

        Covers callers, dependencies, two callers of one dependency and two dependencies of
        one caller (within two hops).
        """
        r = self._near.get(service)
        if r is None:
            r = self._near[service] = self._bfs(service, self._adj, self.hops)
        return r

    def relation(self, a: str, b: str) -> tuple[str, int, str]:
        """How ``a`` relates to ``b``: (relation, hops, via) for explanations.

        relation: ``same``, ``calls`` (a depends on b), ``called-by`` (b depends on a),
        ``shared-dependency`` (both call ``via``), ``shared-caller`` (``via`` calls both),
        ``path`` (an undirected path of ``hops``), ``none``.
        """
        if a == b:
            return "same", 0, a
        h = self.down(a).get(b)
        if h is not None:
            return "calls", h, b
        h = self.up(a).get(b)
        if h is not None:
            return "called-by", h, b
        common = self.deps1(a) & self.deps1(b)
        if common:
            return "shared-dependency", 2, min(common)
        callers = set(self._pred.get(a, ())) & set(self._pred.get(b, ()))
        if callers:
            return "shared-caller", 2, min(callers)
        h = self.near(a).get(b)
        if h is not None:
            return "path", h, b
        return "none", 0, b

    def callers1(self, service: str) -> tuple[str, ...]:
        """Direct callers."""
        return self._pred.get(service, ())

    def deps1(self, service: str) -> frozenset[str]:
        """Direct dependencies."""
        r = self._deps1.get(service)
        if r is None:
            r = self._deps1[service] = frozenset(self._succ.get(service, ()))
        return r

    def blast_radius(self, service: str) -> frozenset[str]:
        """All transitive callers of ``service`` (no hop limit): where its failure can show."""
        r = self._anc.get(service)
        if r is None:
            r = self._anc[service] = frozenset(self._bfs(service, self._pred, None))
        return r

    def hops_between(self, a: str, b: str) -> tuple[int, str] | None:
        """(hops, direction) if ``a`` and ``b`` are related within the hop limit.

        direction: ``"same"``, ``"calls"`` (a is a caller of b), ``"called-by"`` (a is a
        dependency of b).
        """
        if a == b:
            return 0, "same"
        h = self.down(a).get(b)
        if h is not None:
            return h, "calls"
        h = self.up(a).get(b)
        if h is not None:
            return h, "called-by"
        return None
