"""Applying a responder's feedback to a tracked incident.

``ack`` acknowledges an unresolved incident; ``resolve`` resolves it now (it can still reopen
within ``reopen_window_s``); ``verdict`` records the verdict; ``root_cause`` confirms a root
cause, which then ranks first whatever the evidence; ``merge`` merges the listed incidents into
this one. Feedback for an incident no longer tracked, and ``split``, change nothing.
"""

from __future__ import annotations

from pipeline.domain.correlate.merging import Merger
from pipeline.domain.correlate.ranking import Ranker
from pipeline.domain.correlate.relate import JoinIndex
from pipeline.domain.correlate.schedule import Scheduler
from pipeline.domain.correlate.state import Book, emit
from pipeline.domain.schemas import (
    EventType,
    Feedback,
    FeedbackAction,
    IncidentEvent,
    IncidentStatus,
)


class FeedbackApplier:
    """Applies feedback to the incidents in the book (see module docstring)."""

    __slots__ = ("book", "index", "merger", "ranker", "scheduler")

    def __init__(
        self,
        book: Book,
        index: JoinIndex,
        ranker: Ranker,
        scheduler: Scheduler,
        merger: Merger,
    ) -> None:
        self.book = book
        self.index = index
        self.ranker = ranker
        self.scheduler = scheduler
        self.merger = merger

    def apply(self, fb: Feedback) -> list[IncidentEvent]:
        """Apply ``fb``; returns the incident events it caused."""
        st = self.book.states.get(fb.incident_id)
        if st is None:
            return []
        inc = st.inc
        at = fb.timestamp
        if fb.action is FeedbackAction.ack:
            if inc.status is IncidentStatus.resolved:
                return []
            inc.status = IncidentStatus.acknowledged
            inc.acknowledged_by = fb.user
            inc.acknowledged_at = at
            inc.updated_at = at
            return [emit(st, EventType.updated, at, f"acknowledged by {fb.user or '?'}")]
        if fb.action is FeedbackAction.resolve:
            if inc.status is IncidentStatus.resolved:
                return []
            self.index.unindex(st)
            inc.status = IncidentStatus.resolved
            st.reopen_t = None
            inc.resolved_at = at
            inc.resolved_by = fb.user
            inc.updated_at = at
            st.resolved_t = max(at.timestamp(), st.last_change_t)
            self.scheduler.schedule(st)
            return [emit(st, EventType.resolved, at, f"resolved by {fb.user or '?'}")]
        if fb.action is FeedbackAction.verdict:
            assert fb.verdict is not None
            inc.verdict = fb.verdict.value
            inc.updated_at = at
            return [emit(st, EventType.updated, at, f"verdict {fb.verdict.value}")]
        if fb.action is FeedbackAction.root_cause:
            assert fb.root_cause is not None
            st.confirmed = fb.root_cause
            inc.updated_at = at
            self.ranker.rerank(st)
            return [
                emit(
                    st,
                    EventType.root_cause_changed,
                    at,
                    f"root cause {fb.root_cause} confirmed by {fb.user or '?'}",
                )
            ]
        if fb.action is FeedbackAction.merge:
            events: list[IncidentEvent] = []
            for other in fb.merge_with:
                ost = self.book.states.get(other)
                if ost is None or other == fb.incident_id:
                    continue
                events.extend(self.merger.merge(st, ost, at, f"merged by {fb.user or '?'}"))
            return events
        return []
