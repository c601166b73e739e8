"""Alert-level cross-domain joins: each domain's correlator also sees *ghosts* of the other
domains' open incidents near it (their services, kinds, first/last alert time, root cause,
from the same summaries the merge stage reads), and matches every alert against local
incidents and ghosts alike, with the correlator's own rules. When the best match is a ghost,
the alert opens a local incident *declared* part of the ghost's incident; when one alert
links a local incident and a ghost the way the correlator would merge two incidents (same
burst, shared cause), the domain declares the union. The merge stage then only applies the
declared unions (union-find), re-ranks and explains.

Why: a per-domain incident formed without seeing the other domains' incidents can hold alerts
that one correlator would have put into an incident of another domain (its best match was
there); merging whole per-domain incidents afterwards then joins incidents one correlator kept
apart. Ghosts give the domain the same candidates one correlator has, up to the staleness of
the summaries (one step plus a hop).
"""

from __future__ import annotations

from datetime import datetime

from merge import Summary
from pipeline.domain.correlate import CorrelationSettings, _State
from pipeline.domain.schemas import Alert, Incident, IncidentEvent, IncidentStatus, Severity
from pipeline.domain.topology import Topology
from run import SpanCorrelator


def _dt(t: float) -> datetime:
    from datetime import UTC

    return datetime.fromtimestamp(t, UTC)


class GhostCorrelator(SpanCorrelator):
    def __init__(self, topology: Topology, settings: CorrelationSettings | None = None) -> None:
        super().__init__(topology, settings)
        self.ghosts: set[str] = set()
        self.declared: list[tuple[str, str, str]] = []  # (local id, foreign id, why)
        self._shadow: str | None = None  # local incident the last ghost-bound alert opened
        self.merged_map: dict[str, str] = {}  # local incident absorbed -> absorbing one

    def _merge(self, target: _State, src: _State, at, why: str):
        self.merged_map[src.inc.id] = target.inc.id
        return super()._merge(target, src, at, why)

    def drain_declared(self) -> list[tuple[str, str, str]]:
        """Declared unions, local ids followed through this domain's own merges."""
        out = []
        for a, b, why in self.declared:
            seen = set()
            while a in self.merged_map and a not in seen:
                seen.add(a)
                a = self.merged_map[a]
            out.append((a, b, why))
        self.declared.clear()
        if len(self.merged_map) > 10_000:
            self.merged_map.clear()
        return out

    # ------------------------------------------------------------------ ghosts in, out

    def ghost_update(self, sm: Summary, root: str | None = None,
                     group_first_t: float | None = None) -> None:
        if sm.merged_into or sm.id in self._states and sm.id not in self.ghosts:
            if sm.merged_into:
                self.ghost_remove(sm.id)
            return
        st = self._states.get(sm.id)
        if st is None:
            inc = Incident(id=sm.id, status=IncidentStatus.open, opened_at=_dt(sm.first_t),
                           updated_at=_dt(sm.last_t), severity=Severity.warning,
                           domain=sm.domain, page=False)
            st = _State(inc=inc, first_t=sm.first_t, last_t=sm.last_t,
                        last_change_t=sm.last_t)
            st.indexed = False
            self._states[sm.id] = st
            self.ghosts.add(sm.id)
        for svc, kinds in sm.evidence.items():
            new = svc not in st.evidence
            st.evidence[svc] = sorted(kinds)
            st.first_seen[svc] = sm.first_seen[svc]
            if new and st.indexed:
                self._index_service(st, svc)  # only the new service: no full re-index
        st.first_t = min(st.first_t, sm.first_t)
        st.last_t = max(st.last_t, sm.last_t)
        new_root = root if root is not None else sm.root
        st.inc.root_cause = new_root
        if group_first_t is not None and group_first_t < st.first_t:
            self.span_start[sm.id] = group_first_t  # too old with its group, as one incident
        if sm.index_end is not None and sm.index_end <= self._watermark:
            self.ghost_remove(sm.id)  # its correlator no longer matches alerts to it
            return
        if not st.indexed:
            self._index(st)

    def ghost_remove(self, iid: str) -> None:
        if iid not in self.ghosts:
            return
        st = self._states.pop(iid)
        st.indexed = True
        Correlator_unindex(self, st)
        self.ghosts.discard(iid)
        self.unindexed_at.pop(iid, None)

    def ghost_expire(self, now: float) -> None:
        s = self.settings
        for iid in [g for g in self.ghosts
                    if self._states[g].last_t + s.join_gap_s + s.allowed_lateness_s < now]:
            self.ghost_remove(iid)

    def incidents(self) -> list[Incident]:
        return [st.inc for iid, st in self._states.items() if iid not in self.ghosts]

    # ------------------------------------------------------------------ joins and merges

    def _join(self, st: _State, alert: Alert, fp: str, t: float, reason: str, etype):
        if st.inc.id not in self.ghosts:
            return super()._join(st, alert, fp, t, reason, etype)
        # the best match is another domain's incident: open a local part of it
        events = self._open(alert, fp, t)
        local = events[0].incident.id
        self._shadow = local
        self.declared.append((local, st.inc.id,
                              f"{alert.service} ({self.topology.domain(alert.service)}): "
                              f"{reason}, in {st.inc.id} ({st.inc.domain})"))
        return events

    def _merge_shared(self, st: _State, others: list[str], at) -> list[IncidentEvent]:
        """The alert that joined ``st`` (a local incident, or a ghost: then it opened the
        local ``_shadow``) also matched ``others``: merge or declare like the correlator
        (same burst, or shared cause, judged on the incidents the alert really joined)."""
        ghost_st = st.inc.id in self.ghosts
        local = self._states.get(self._shadow) if ghost_st else st
        self._shadow = None
        if local is None:
            return []
        if not ghost_st and not any(o in self.ghosts for o in others):
            return super()._merge_shared(st, others, at)
        events: list[IncidentEvent] = []
        for oid in others:
            ost = self._states.get(oid)
            if ost is None or ost is local or ost is st:
                continue
            if oid not in self.ghosts and ost.inc.status is IncidentStatus.resolved:
                continue
            young = at.timestamp() - max(self._start(st), self._start(ost)) <= \
                self.settings.burst_merge_s
            shared = self._shares_cause(st, ost)
            if not (young or shared):
                continue
            why = "one alert linked them in the same burst" if young else "shared root cause"
            if oid in self.ghosts:
                self.declared.append((local.inc.id, oid, why))
            else:  # two local incidents: merge their states (the older one survives)
                target, src = (local, ost) if local.first_t <= ost.first_t else (ost, local)
                events.extend(self._merge(target, src, at, why))
                local = target
        return events


def Correlator_unindex(corr: GhostCorrelator, st: _State) -> None:
    """Remove a ghost from the indices without recording an unindex time."""
    from pipeline.domain.correlate import Correlator

    Correlator._unindex(corr, st)
