"""Root causes of cross-domain groups: ranked over the union evidence with
:func:`pipeline.domain.rootcause.rank`, throttled like the correlator's own re-ranking
(every change up to ``rerank_every_upto`` services, then per ``rerank_growth``)."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.domain.correlate import CorrelationSettings
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.merge.state import Group
from pipeline.domain.rootcause import DEFAULT_LLR, RankCache, rank
from pipeline.domain.schemas import RootCauseCandidate


class GroupRanker:
    """Ranks groups, one incremental cache per group (a cache only: never checkpointed)."""

    def __init__(
        self,
        graph: GraphIndex,
        settings: CorrelationSettings,
        blast_radius: Callable[[str], frozenset[str]],
    ) -> None:
        self.graph = graph
        self.settings = settings
        self.blast_radius = blast_radius
        self._caches: dict[str, RankCache] = {}

    def forget(self, group_id: str) -> None:
        self._caches.pop(group_id, None)

    def reset(self) -> None:
        self._caches = {}

    def maybe_rerank(self, grp: Group, force: bool = False) -> bool:
        """Re-rank a group of several incidents whose evidence grew enough (or ``force``)."""
        if len(grp.members) == 1 or not (grp.pending or force):
            return False
        n = len(grp.evidence)
        s = self.settings
        if not force and n > s.rerank_every_upto and grp.pending < s.rerank_growth * n:
            return False
        self.rerank(grp)
        return True

    def rerank(self, grp: Group) -> None:
        grp.pending = 0
        grp.ranked = True
        cache = self._caches.get(grp.id)
        if cache is None:
            cache = self._caches[grp.id] = RankCache()
        s = self.settings
        ranked = rank(grp.evidence, grp.first_seen, self.graph, s.rank, DEFAULT_LLR, cache=cache)
        grp.root = ranked[0].service if ranked else None
        grp.candidates = [
            RootCauseCandidate(
                service=r.service, score=round(r.score, 4), alerting=r.alerting, reasons=r.reasons
            )
            for r in ranked
        ]

    def shares_cause(self, a: Group, b: Group) -> bool:
        """Same root cause, or one root in the other's blast radius."""
        ra, rb = a.root, b.root
        if not ra or not rb:
            return False
        if ra == rb:
            return True
        return rb in self.blast_radius(ra) or ra in self.blast_radius(rb)
