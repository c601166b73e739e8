"""Merging incidents that turn out to be one: a shared root cause, or one burst split by
arrival order. The older incident survives and absorbs the younger one's alerts (and the
summary of those it forgot); it is compacted if that takes it past ``max_members``."""

from __future__ import annotations

from datetime import datetime

from pipeline.domain.correlate.compaction import compact
from pipeline.domain.correlate.labels import absorb as absorb_common
from pipeline.domain.correlate.paging import PagingGate
from pipeline.domain.correlate.ranking import Ranker
from pipeline.domain.correlate.relate import JoinIndex
from pipeline.domain.correlate.schedule import Scheduler
from pipeline.domain.correlate.settings import CorrelationSettings
from pipeline.domain.correlate.state import (
    Archive,
    Book,
    IncidentState,
    Member,
    count_alert,
    emit,
    members_in_all,
    span_start,
)
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.schemas import SEVERITY_RANK, EventType, IncidentEvent, IncidentStatus


def shares_cause(graph: GraphIndex, a: IncidentState, b: IncidentState) -> bool:
    """Do ``a`` and ``b`` have the same root cause, or one root in the other's blast radius?"""
    ra, rb = a.inc.root_cause, b.inc.root_cause
    if not ra or not rb:
        return False
    if ra == rb:
        return True
    if not (graph.known(ra) and graph.known(rb)):
        return False
    return rb in graph.blast_radius(ra) or ra in graph.blast_radius(rb)


def absorb(target: IncidentState, src: IncidentState, max_labels: int = 0) -> None:
    """Append ``src``'s members to ``target`` and fold in everything derived from them: the
    evidence, counts, paging tally, the summary of forgotten members, and link labels (up to
    ``max_labels``, 0 = all).

    ``target`` reopens if it was resolved and ``src`` still has firing alerts. ``src`` is
    left as it was.
    """
    tinc, sinc = target.inc, src.inc
    offset = len(target.members)
    for m in src.members:
        ref = sinc.alerts[m.ref]
        target.members.append(Member(m.fp, m.service, m.kind, m.sev, m.t, len(tinc.alerts), m.rt))
        tinc.alerts.append(ref)
        tinc.alert_ids.append(ref.id)
    for fp, idx in src.firing.items():
        target.firing[fp] = idx + offset
    for fp, times in src.fires.items():
        target.fires.setdefault(fp, []).extend(times)
    for fp, idx in src.fp_last.items():
        target.fp_last[fp] = idx + offset
    for svc, kinds in src.evidence.items():
        cur = target.evidence.setdefault(svc, [])
        for k in kinds:
            if k not in cur:
                cur.append(k)
        cur.sort()
        fs = src.first_seen[svc]
        if svc not in target.first_seen or fs < target.first_seen[svc]:
            target.first_seen[svc] = fs
    for c in sinc.alert_counts:
        count_alert(target, c.service, c.name, c.count, c.firing)
    n_sev = len(SEVERITY_RANK)
    if len(target.sev_n) == n_sev and len(src.sev_n) == n_sev:
        target.sev_n = [a + b for a, b in zip(target.sev_n, src.sev_n, strict=True)]
    else:
        target.sev_n = []  # (the paging gate recounts)
    if src.archive is not None:
        if target.archive is None:
            target.archive = Archive()
        target.archive.merge(src.archive)
    tinc.alert_count = members_in_all(target)
    absorb_common(target.common, src.common)
    labels = target.labels
    for kv in src.labels:
        if kv not in labels and (max_labels <= 0 or len(labels) < max_labels):
            labels.append(kv)
    target.first_t = min(target.first_t, src.first_t)
    target.last_t = max(target.last_t, src.last_t)
    target.last_change_t = max(target.last_change_t, src.last_change_t)
    if SEVERITY_RANK[sinc.severity] > SEVERITY_RANK[tinc.severity]:
        tinc.severity = sinc.severity
    target.merged_from.append(sinc.id)
    tinc.services = sorted(target.evidence)
    if tinc.status is IncidentStatus.resolved and src.firing:
        tinc.status = IncidentStatus.open
        tinc.resolved_at = None
        target.resolved_t = None


class Merger:
    """Merges incidents, keeping indices, series, rankings, gates and schedule in step."""

    __slots__ = ("book", "gate", "graph", "index", "ranker", "scheduler", "settings")

    def __init__(
        self,
        settings: CorrelationSettings,
        graph: GraphIndex,
        book: Book,
        index: JoinIndex,
        ranker: Ranker,
        gate: PagingGate,
        scheduler: Scheduler,
    ) -> None:
        self.settings = settings
        self.graph = graph
        self.book = book
        self.index = index
        self.ranker = ranker
        self.gate = gate
        self.scheduler = scheduler

    def merge_shared(
        self, st: IncidentState, others: list[str], at: datetime
    ) -> list[IncidentEvent]:
        """An alert that joined ``st`` also relates to the open incidents ``others``: merge
        each that shares ``st``'s cause or opened in the same burst (within
        ``burst_merge_s`` of the alert), into whichever of the two is older."""
        events: list[IncidentEvent] = []
        for oid in others:
            ost = self.book.states.get(oid)
            if ost is None or ost is st or ost.inc.status is IncidentStatus.resolved:
                continue
            # a fragment: the younger incident opened at most burst_merge_s before the alert
            # that links it to the other one (one burst, split by arrival order); an incident
            # in a cross-domain group is as old as its group
            young = (
                at.timestamp() - max(span_start(st), span_start(ost)) <= self.settings.burst_merge_s
            )
            shared = shares_cause(self.graph, st, ost)
            if young or shared:
                target, src = (st, ost) if st.first_t <= ost.first_t else (ost, st)
                why = (
                    f"same root cause {target.inc.root_cause}"
                    if shared
                    else "opened in the same burst and linked by a later alert"
                )
                events.extend(self.merge(target, src, at, why))
                st = target
        return events

    def merge(
        self, target: IncidentState, src: IncidentState, at: datetime, why: str
    ) -> list[IncidentEvent]:
        """Move every member of ``src`` into ``target``; ``src`` ends merged (empty) and
        forgotten. Returns the ``merged`` events of both."""
        tinc, sinc = target.inc, src.inc
        index = self.index
        index.unindex(src)
        absorb(target, src, self.settings.max_labels)
        self.book.journal.merged(sinc.id, tinc.id)
        series = self.book.series
        for fp in src.fp_last:
            series[fp] = tinc.id
        compact(target, self.book, self.settings.max_members)
        if index.is_indexed(target):
            # already indexed: only the absorbed incident's services and labels are new
            for svc in src.evidence:
                index.index_service(target, svc)
            kept = set(target.labels)
            for kv in src.labels:
                if kv in kept:
                    index.index_label(target, kv)
        elif tinc.status is not IncidentStatus.resolved:
            target.indexed = False
            index.index(target)
        tinc.updated_at = at
        self.ranker.rerank(target)
        gate = self.gate.reached(target, target.last_t)
        if gate and not target.gate:
            tinc.page = True
        target.gate = target.gate or gate
        # the absorbed incident: closed, pointing at the survivor, no members of its own
        sinc.merged_into = tinc.id
        sinc.status = IncidentStatus.resolved
        sinc.resolved_at = at
        sinc.alert_ids = []
        sinc.alerts = []
        sinc.alert_count = 0
        sinc.alert_counts = []
        sinc.explanation = f"Merged into {tinc.id}: {why}."
        sinc.updated_at = at
        del self.book.states[sinc.id]
        self.ranker.forget(sinc.id)
        index.forget(sinc.id)
        self.scheduler.schedule(target)
        detail = f"merged {sinc.id} into {tinc.id}: {why}"
        return [
            emit(src, EventType.merged, at, detail),
            emit(target, EventType.merged, at, detail),
        ]
