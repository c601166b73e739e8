"""Ranking an incident's root-cause candidates, suppressing its symptoms, explaining it.

The ranking itself is :func:`pipeline.domain.rootcause.rank`; this part decides when to
re-rank, applies a responder's confirmed root cause, marks the alerts beneath an established
root cause ``suppressed`` and rebuilds the incident's explanation.
"""

from __future__ import annotations

from pipeline.domain.cooccurrence import CoOccurrence
from pipeline.domain.correlate.settings import CorrelationSettings
from pipeline.domain.correlate.state import IncidentState
from pipeline.domain.explain import incident_explanation
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.rootcause import DEFAULT_LLR, RankCache, Ranked, rank
from pipeline.domain.schemas import RootCauseCandidate


class Ranker:
    """Root-cause ranking of incidents, incremental per incident (one cache each)."""

    __slots__ = ("_cache", "_llr", "cooc", "graph", "settings")

    def __init__(
        self, graph: GraphIndex, settings: CorrelationSettings, cooc: CoOccurrence | None = None
    ) -> None:
        self.graph = graph
        self.cooc = cooc
        self.settings = settings
        self._llr = DEFAULT_LLR
        self._cache: dict[str, RankCache] = {}  # incident id -> incremental ranking

    def forget(self, incident_id: str) -> None:
        """Drop the incident's ranking cache (it was merged away or evicted)."""
        self._cache.pop(incident_id, None)

    def graph_changed(self) -> None:
        """The graph learned an edge: every incremental ranking starts over."""
        self._cache.clear()

    def evidence_changed(self, st: IncidentState) -> None:
        """New evidence (a service or kind, or an earlier onset): re-rank now or later.

        Every change is ranked up to ``rerank_every_upto`` services; above, once the changes
        not ranked yet reach ``rerank_growth`` times the services.
        """
        s = self.settings
        st.pending += 1
        n = len(st.evidence)
        if n <= s.rerank_every_upto or st.pending >= s.rerank_growth * n:
            self.rerank(st)

    def rerank(self, st: IncidentState) -> None:
        """Rank the candidates; set root cause, suppression flags and explanation."""
        st.pending = 0
        inc = st.inc
        ev = st.evidence
        cache = self._cache.get(inc.id)
        if cache is None:
            cache = self._cache[inc.id] = RankCache()
        # learned relations matter where the graph is thin: small incidents (a storm's large
        # ones are ranked on the graph alone, which keeps re-ranking cheap)
        related = None
        if self.cooc is not None and len(ev) <= self.settings.rerank_every_upto:
            related = self.cooc.partners
        ranked = rank(
            ev,
            st.first_seen,
            self.graph,
            self.settings.rank,
            self._llr,
            cache=cache,
            related=related,
        )
        if st.confirmed:
            ranked = [
                Ranked(st.confirmed, 1.0, 0.0, st.confirmed in ev, ["confirmed by a responder"])
            ] + [r for r in ranked if r.service != st.confirmed]
        inc.root_cause_candidates = [
            RootCauseCandidate(
                service=r.service, score=round(r.score, 4), alerting=r.alerting, reasons=r.reasons
            )
            for r in ranked
        ]
        inc.root_cause = ranked[0].service if ranked else None
        root = self.root_established(st)
        if root != st.supp_root:
            st.supp_root = root
            self.resuppress(st)
        self.refresh_explanation(st, ranked)

    def root_established(self, st: IncidentState) -> str | None:
        """The confirmed root cause, else the top candidate once its score reaches
        ``suppress_min_score``, else None."""
        if st.confirmed:
            return st.confirmed
        cands = st.inc.root_cause_candidates
        if cands and cands[0].score >= self.settings.suppress_min_score:
            return cands[0].service
        return None

    def is_symptom(self, st: IncidentState, service: str, kind: str) -> bool:
        """Is an alert of ``kind`` on ``service`` a symptom of the established root cause?

        Never on the root itself nor a saturation alert (a local resource problem); always a
        traffic drop; otherwise when the service is in the root's blast radius.
        """
        root = self.root_established(st)
        if root is None or service == root or kind == "saturation":
            return False
        if kind == "traffic":
            return True
        g = self.graph
        return g.known(root) and service in g.blast_radius(root)

    def resuppress(self, st: IncidentState) -> None:
        """Recompute every member alert's ``suppressed`` flag."""
        alerts = st.inc.alerts
        for m in st.members:
            alerts[m.ref].suppressed = self.is_symptom(st, m.service, m.kind)

    def refresh_explanation(self, st: IncidentState, ranked: list[Ranked] | None = None) -> None:
        """Rebuild ``inc.explanation`` from ``ranked`` (default: the incident's candidates)."""
        inc = st.inc
        if ranked is None:
            ranked = [
                Ranked(c.service, c.score, 0.0, c.alerting, list(c.reasons))
                for c in inc.root_cause_candidates
            ]
        supp: set[str] = set()
        if st.supp_root is not None:
            for ref in inc.alerts:
                if ref.suppressed:
                    supp.add(ref.service)
        inc.explanation = incident_explanation(
            ranked,
            inc.services,
            inc.opened_at,
            sorted(supp),
            confirmed=st.confirmed,
            merged_from=st.merged_from,
        )
