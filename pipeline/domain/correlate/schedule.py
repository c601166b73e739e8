"""When each incident next needs the event-time clock: a heap of due times."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping

from pipeline.domain.correlate.settings import CorrelationSettings, span_end
from pipeline.domain.correlate.state import IncidentState, span_start
from pipeline.domain.schemas import IncidentStatus


class Scheduler:
    """Due times of the incidents' next lifecycle step, one live heap entry per incident.

    An entry is live while it is the incident's earliest scheduled due time; a later due time
    is picked up when the entry pops, an earlier one supersedes the entry.
    """

    __slots__ = ("_heap", "_scheduled", "settings")

    def __init__(self, settings: CorrelationSettings) -> None:
        self.settings = settings
        self._heap: list[tuple[float, str]] = []
        self._scheduled: dict[str, float] = {}  # incident id -> due time of its live entry

    def next_due(self, st: IncidentState) -> float | None:
        """When ``st`` next needs the clock, or None (a resolved incident with no resolve time).

        Open: when it can no longer take alerts (join gap or max span, plus allowed lateness),
        its firing members turn stale, or its quiet period ends. Resolved: when its reopen
        window ends.
        """
        s = self.settings
        if st.inc.status is IncidentStatus.resolved:
            return None if st.resolved_t is None else st.resolved_t + s.reopen_window_s + 1e-6
        dues = []
        if st.indexed:
            dues.append(st.last_t + s.join_gap_s + s.allowed_lateness_s + 1e-6)
            if s.max_span_s > 0:
                dues.append(span_end(span_start(st), s.max_span_s) + s.allowed_lateness_s + 1e-6)
        if st.firing:
            dues.append(st.last_t + s.stale_after_s)
        else:
            dues.append(st.last_change_t + s.quiet_period_s)
        return min(dues)

    def schedule(self, st: IncidentState) -> None:
        """Make sure ``st`` is visited no later than its next due time."""
        due = self.next_due(st)
        if due is None:
            return
        iid = st.inc.id
        cur = self._scheduled.get(iid)
        if cur is None or due < cur:
            self._scheduled[iid] = due
            heapq.heappush(self._heap, (due, iid))

    def due(self, now: float, states: Mapping[str, IncidentState]) -> Iterator[IncidentState]:
        """The incidents whose next due time is at or before ``now``, earliest first.

        Each is yielded unscheduled: the consumer schedules it again (or forgets it). Entries
        pushed while iterating are visited too when they are due by ``now``.
        """
        heap = self._heap
        scheduled = self._scheduled
        while heap and heap[0][0] <= now:
            popped, iid = heapq.heappop(heap)
            if scheduled.get(iid) != popped:
                continue  # superseded entry
            del scheduled[iid]
            st = states.get(iid)
            if st is None:
                continue
            due = self.next_due(st)
            if due is None:
                continue
            if due > now:
                scheduled[iid] = due
                heapq.heappush(heap, (due, iid))
                continue
            yield st

    def is_due(self, now: float) -> bool:
        """Is any entry (live or superseded) due at or before ``now``?"""
        return bool(self._heap) and self._heap[0][0] <= now
