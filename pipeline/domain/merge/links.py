"""Which indexed per-domain incidents a service newly alerting in an incident relates to.

Per incident the closest relation counts (ties: the earliest alert, then the service name,
so the outcome does not depend on set order).

The correlator's own relations (:mod:`pipeline.domain.correlate.relate`), tested at service
granularity across domains: same service (strength 0), a dependency path within ``hops``
either way (strength = hops), a shared direct dependency (2.5), the blast radius of the
incident's root cause (``hops + 1``) and, only when none of these finds anything, a path
ignoring edge direction (``hops + 1.5 + d/10``; whether it may join is judged later against
``undirected_burst_s``). Link labels are not mirrored (they relate mostly services missing
from the topology, whose domain is the service itself).
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.domain.correlate import CorrelationSettings
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.merge.state import INF, MergeState, Record

#: (strength: lower is closer, incident id, relation, via service, when via alerted there)
#: where relation is one of "same", "calls", "called-by", "shared-dependency",
#: "blast-radius", "path"
Link = tuple[float, str, str, str, float]


class LinkIndex:
    """The service, direct-dependency and root indices over the joinable records (held in
    the :class:`MergeState`, so they are checkpointed with it)."""

    def __init__(self, graph: GraphIndex, settings: CorrelationSettings) -> None:
        self.graph = graph
        self.settings = settings
        self._blast: dict[str, frozenset[str]] = {}  # root -> blast radius (a cache)

    def blast_radius(self, root: str) -> frozenset[str]:
        """Blast radius of ``root`` (empty for a service missing from the topology)."""
        r = self._blast.get(root)
        if r is None:
            g = self.graph
            r = self._blast[root] = g.blast_radius(root) if g.known(root) else frozenset()
        return r

    # ------------------------------------------------------------------ updates

    def index(self, state: MergeState, rec: Record) -> None:
        if rec.indexed:
            return
        rec.indexed = True
        for svc in rec.evidence:
            self.index_service(state, rec, svc)
        if rec.root:
            self.index_root(state, rec)

    def index_service(self, state: MergeState, rec: Record, svc: str) -> None:
        state.svc_index.setdefault(svc, set()).add(rec.id)
        if self.settings.shared_dependency:
            t = rec.first_seen[svc]
            for d in self.graph.deps1(svc):
                ids = state.dep_index.setdefault(d, {})
                if t < ids.get(rec.id, INF):
                    ids[rec.id] = t

    def index_root(self, state: MergeState, rec: Record) -> None:
        if rec.root:
            self.blast_radius(rec.root)
            state.root_index.setdefault(rec.root, set()).add(rec.id)

    def unindex_root(self, state: MergeState, rec: Record) -> None:
        if rec.root:
            _discard(state.root_index, rec.root, rec.id)

    def unindex(self, state: MergeState, rec: Record) -> None:
        if not rec.indexed:
            return
        rec.indexed = False
        for svc in rec.evidence:
            _discard(state.svc_index, svc, rec.id)
            for d in self.graph.deps1(svc):
                ids = state.dep_index.get(d)
                if ids is not None:
                    ids.pop(rec.id, None)
                    if not ids:
                        del state.dep_index[d]
        self.unindex_root(state, rec)

    # ------------------------------------------------------------------ queries

    def related(self, state: MergeState, service: str) -> list[Link]:
        """Indexed incidents related to ``service`` by the closer relations (no "path")."""
        s, g = self.settings, self.graph
        recs, svc_index = state.records, state.svc_index
        found: dict[str, Link] = {}

        def add(iid: str, strength: float, relation: str, via: str, t: float) -> None:
            cur = found.get(iid)
            if cur is None or (strength, t, via) < (cur[0], cur[4], cur[3]):
                found[iid] = (strength, iid, relation, via, t)

        for iid in svc_index.get(service, ()):
            add(iid, 0.0, "same", service, recs[iid].first_seen[service])
        if g.known(service):
            for nb, rel in ((g.down(service), "calls"), (g.up(service), "called-by")):
                for y in nb.keys() & svc_index.keys():
                    h = float(nb[y])
                    for iid in svc_index[y]:
                        add(iid, h, rel, y, recs[iid].first_seen[y])
            if s.shared_dependency:
                for d in g.deps1(service):
                    for iid, t in state.dep_index.get(d, {}).items():
                        add(iid, 2.5, "shared-dependency", d, t)
            if s.blast_radius:
                for root in state.root_index:
                    if service in self.blast_radius(root):
                        for iid in state.root_index[root]:
                            add(iid, s.hops + 1.0, "blast-radius", root, recs[iid].first_t)
        return list(found.values())

    def near(self, state: MergeState, service: str) -> list[Link]:
        """Indexed incidents within ``hops`` of ``service`` ignoring edge direction."""
        g = self.graph
        if not g.known(service):
            return []
        recs, svc_index = state.records, state.svc_index
        found: dict[str, Link] = {}
        near = g.near(service)
        for y in near.keys() & svc_index.keys():
            strength = self.settings.hops + 1.5 + near[y] / 10
            for iid in svc_index[y]:
                t = recs[iid].first_seen[y]
                cur = found.get(iid)
                if cur is None or (strength, t, y) < (cur[0], cur[4], cur[3]):
                    found[iid] = (strength, iid, "path", y, t)
        return list(found.values())


def best_first(state: MergeState, links: Iterable[Link]) -> list[Link]:
    """Closest relation first, then the incident with the latest alert, then by id."""
    recs = state.records
    return sorted(links, key=lambda m: (m[0], -recs[m[1]].last_t, m[1]))


def _discard(index: dict[str, set[str]], key: str, iid: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(iid)
        if not ids:
            del index[key]
