"""An incident's lifecycle on the event-time clock: resolve, reopen, split a reopen, evict.

``open`` -> ``resolved`` once every member alert is resolved (a member firing for
``stale_after_s`` counts as resolved) and nothing happened for ``quiet_period_s``;
``reopened`` when a member alert fires again within ``reopen_window_s`` of the resolution.
A reopen is provisional for ``burst_merge_s``: a series the incident never had joining it
means the recurrence started a new burst, and the alerts since the reopen move to a new
incident (those it still holds: members it forgot stay, see :mod:`.compaction`). An
incident closes to new alerts ``join_gap_s`` after its latest one (or ``max_span_s`` after
its first), plus ``allowed_lateness_s``, and is forgotten once its reopen window is over.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.domain.correlate.paging import PagingGate
from pipeline.domain.correlate.ranking import Ranker
from pipeline.domain.correlate.relate import JoinIndex
from pipeline.domain.correlate.schedule import Scheduler
from pipeline.domain.correlate.settings import CorrelationSettings, span_end
from pipeline.domain.correlate.state import (
    SEVERITY_BY_RANK,
    Book,
    IncidentState,
    emit,
    mark_resolved,
    recount,
    span_start,
    to_dt,
)
from pipeline.domain.explain import fmt_delay
from pipeline.domain.schemas import EventType, Incident, IncidentEvent, IncidentStatus


def rebuild(st: IncidentState) -> None:
    """Recompute the fields derived from the members (after a split moved some away),
    starting from the summary of the members the incident forgot."""
    arch = st.archive
    if arch is not None:
        st.evidence = {svc: list(kinds) for svc, kinds in arch.evidence.items()}
        st.first_seen = dict(arch.first_seen)
        sev, first_t, last_t, last_change = arch.sev, arch.first_t, arch.last_t, arch.last_change_t
    else:
        st.evidence = {}
        st.first_seen = {}
        sev, first_t, last_t, last_change = 0, float("inf"), float("-inf"), float("-inf")
    st.firing = {}
    st.fp_last = {}
    for i, m in enumerate(st.members):
        m.ref = i
        kinds = st.evidence.setdefault(m.service, [])
        if m.kind not in kinds:
            kinds.append(m.kind)
            kinds.sort()
        fs = st.first_seen.get(m.service)
        if fs is None or m.t < fs:
            st.first_seen[m.service] = m.t
        st.fp_last[m.fp] = i
        if m.rt is None:
            st.firing[m.fp] = i
        else:
            st.firing.pop(m.fp, None)
        sev = max(sev, m.sev)
        first_t = min(first_t, m.t)
        last_t = max(last_t, m.t)
        last_change = max(last_change, m.t, m.rt or m.t)
    st.first_t, st.last_t, st.last_change_t = first_t, last_t, last_change
    st.inc.services = sorted(st.evidence)
    st.inc.severity = SEVERITY_BY_RANK[sev]
    st.inc.opened_at = to_dt(first_t)
    st.pending = 0
    recount(st)


class Lifecycle:
    """Moves incidents through their lifecycle (see module docstring)."""

    __slots__ = ("book", "gate", "index", "ranker", "scheduler", "settings")

    def __init__(
        self,
        settings: CorrelationSettings,
        book: Book,
        index: JoinIndex,
        ranker: Ranker,
        gate: PagingGate,
        scheduler: Scheduler,
    ) -> None:
        self.settings = settings
        self.book = book
        self.index = index
        self.ranker = ranker
        self.gate = gate
        self.scheduler = scheduler

    # ------------------------------------------------------------------ the clock

    def advance(self, now: float) -> list[IncidentEvent]:
        """Clock tick: resolve quiet incidents, close joins that can no longer happen, evict."""
        if not self.scheduler.is_due(now):
            return []
        events: list[IncidentEvent] = []
        for st in self.scheduler.due(now, self.book.states):
            event = self._step(st, now)
            if event is not None:
                events.append(event)
        return events

    def _step(self, st: IncidentState, now: float) -> IncidentEvent | None:
        """One due incident at ``now``; it is scheduled again unless evicted."""
        s = self.settings
        inc = st.inc
        event = None
        if inc.status is not IncidentStatus.resolved:
            # stale firing members: count them as resolved
            if st.firing and now - st.last_t >= s.stale_after_s:
                for idx in list(st.firing.values()):
                    mark_resolved(st, idx)
                st.firing.clear()
            if not st.firing and now - st.last_change_t >= s.quiet_period_s:
                event = self._resolve_quiet(st)
            elif st.indexed and (
                now > st.last_t + s.join_gap_s + s.allowed_lateness_s
                or (
                    s.max_span_s > 0
                    and now > span_end(span_start(st), s.max_span_s) + s.allowed_lateness_s
                )
            ):
                self.index.unindex(st)
        else:
            assert st.resolved_t is not None
            if now - st.resolved_t > s.reopen_window_s:
                self.evict(st)
                return None
        self.scheduler.schedule(st)
        return event

    def _resolve_quiet(self, st: IncidentState) -> IncidentEvent:
        """Resolve ``st`` at the end of its quiet period."""
        s = self.settings
        inc = st.inc
        self.index.unindex(st)
        if st.pending:
            self.ranker.rerank(st)
        inc.status = IncidentStatus.resolved
        st.reopen_t = None
        st.resolved_t = st.last_change_t + s.quiet_period_s
        inc.resolved_at = to_dt(st.resolved_t)
        inc.updated_at = inc.resolved_at
        self.ranker.refresh_explanation(st)
        return emit(
            st,
            EventType.resolved,
            inc.updated_at,
            f"all alerts resolved and quiet for {fmt_delay(s.quiet_period_s)}",
        )

    def evict(self, st: IncidentState) -> None:
        """Forget ``st``: out of the indices, the series book and the rank caches."""
        self.index.unindex(st)
        iid = st.inc.id
        series = self.book.series
        for fp in st.fp_last:
            if series.get(fp) == iid:
                del series[fp]
        del self.book.states[iid]
        self.ranker.forget(iid)
        self.index.forget(iid)

    # ------------------------------------------------------------------ reopen

    def can_reopen(self, st: IncidentState, t: float) -> bool:
        """May a member series firing again at ``t`` reopen the resolved ``st``?"""
        return (
            st.resolved_t is not None
            and t - st.resolved_t < self.settings.reopen_window_s
            and t >= st.first_t
            and not st.no_reopen
        )

    def reopen(self, st: IncidentState, t: float) -> str:
        """Reopen ``st`` (provisionally) at ``t``; returns the reason for the alert joining."""
        assert st.resolved_t is not None
        inc = st.inc
        inc.status = IncidentStatus.open
        inc.resolved_at = None
        inc.resolved_by = None
        self.index.index(st)
        gap = t - st.resolved_t
        st.reopen_t = t
        st.reopen_at = len(st.members)
        st.reopen_prev_t = st.resolved_t
        st.resolved_t = None
        return f"same alert fired again {fmt_delay(gap)} after the incident resolved"

    def is_new_burst(self, st: IncidentState, fp: str, t: float) -> bool:
        """Does series ``fp`` joining ``st`` at ``t`` show its reopen began a new burst?

        It does when the series is one the incident never had, within ``burst_merge_s`` of a
        reopen that brought in alerts.
        """
        return (
            st.reopen_t is not None
            and t - st.reopen_t <= self.settings.burst_merge_s
            and fp not in st.fp_last
            and len(st.members) > st.reopen_at
        )

    def split_reopened(
        self, st: IncidentState, at: datetime
    ) -> tuple[IncidentEvent, str, IncidentState]:
        """Undo a provisional reopen: the alerts since it move to a new incident.

        Returns the old incident's ``resolved`` event, the detail for the new incident's
        ``opened`` event, and the new incident's state.
        """
        book = self.book
        k = st.reopen_at
        inc = st.inc
        moved = st.members[k:]
        refs = inc.alerts[k:]
        del st.members[k:]
        del inc.alerts[k:]
        del inc.alert_ids[k:]
        iid = book.free_id(refs[0].id)
        new_inc = Incident(
            id=iid,
            status=IncidentStatus.open,
            opened_at=refs[0].timestamp,
            updated_at=at,
            severity=refs[0].severity,
            domain=inc.domain,
            page=False,
        )
        new_inc.alerts = refs
        new_inc.alert_ids = [r.id for r in refs]
        t0 = moved[0].t
        for i, (r, m) in enumerate(zip(refs, moved, strict=True)):
            if i == 0:
                r.reason = (
                    f"first alert of the incident (it reopened {inc.id}, but a new burst "
                    f"followed: not a recurrence)"
                )
            else:
                r.reason = (
                    f"same burst, {fmt_delay(m.t - t0)} after the first alert (moved from "
                    f"{inc.id} with it)"
                )
        nst = IncidentState(
            inc=new_inc, first_t=moved[0].t, last_t=moved[0].t, last_change_t=moved[0].t
        )
        nst.members = moved
        nst.labels = list(st.labels)
        nst.common = dict(st.common)  # pairs all the old one's alerts had, these have too
        nst.split_from = inc.id
        for m in moved:
            times = st.fires.get(m.fp)
            if times is not None:
                nst.fires[m.fp] = list(times)
        book.states[iid] = nst
        book.journal.moved(inc.id, iid, new_inc.alert_ids)
        # the old incident goes back to how it was before the reopen, and never reopens again
        self.index.unindex(st)
        rebuild(st)
        rebuild(nst)
        for fp in nst.fp_last:
            book.series[fp] = iid
        st.no_reopen = True
        st.reopen_t = None
        inc.status = IncidentStatus.resolved
        st.resolved_t = st.reopen_prev_t if st.reopen_prev_t is not None else st.last_change_t
        inc.resolved_at = to_dt(st.resolved_t)
        inc.updated_at = at
        self.ranker.rerank(st)
        self.scheduler.schedule(st)
        self.index.index(nst)
        self.ranker.rerank(nst)
        nst.gate = self.gate.reached(nst, nst.last_t)
        new_inc.page = nst.gate
        self.scheduler.schedule(nst)
        detail = (
            f"{len(moved)} alert{'s' if len(moved) != 1 else ''} that reopened {inc.id} "
            f"moved to {iid}: a new burst began, not a recurrence"
        )
        return emit(st, EventType.resolved, at, detail), detail, nst
