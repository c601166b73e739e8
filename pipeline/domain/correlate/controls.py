"""Controls from the cross-domain merge stage (:mod:`pipeline.domain.merge`).

When a connected topology is split into several correlation domains, each domain's
correlator sees only its own alerts. The merge stage unites per-domain incidents into the
incident one correlator would have made, and sends two controls back to the domains so that
their incidents follow the same lifecycle as that one incident would:

* ``span_start(incident, t)``: the incident belongs to a cross-domain group whose first alert
  came at ``t``: its ``max_span_s`` cut and its age in a burst count from ``t``;
* ``split_reopened(incident, t)``: another domain's series related to the incident came at
  ``t``, within ``burst_merge_s`` of the incident's provisional reopen: in one domain that
  series would have undone the reopen (a new burst, not a recurrence), so undo it here.

Neither happens without a control: a single-domain correlator behaves exactly as before.
"""

from __future__ import annotations

from pipeline.domain.correlate.lifecycle import Lifecycle
from pipeline.domain.correlate.schedule import Scheduler
from pipeline.domain.correlate.settings import CorrelationSettings
from pipeline.domain.correlate.state import Book, emit, span_start, to_dt
from pipeline.domain.schemas import EventType, IncidentEvent


def apply_span_start(book: Book, scheduler: Scheduler, incident_id: str, t: float) -> bool:
    """Count the incident's span from ``t`` when that is earlier than its current start;
    returns whether anything changed (an unknown incident is ignored)."""
    st = book.states.get(incident_id)
    if st is None or t >= span_start(st):
        return False
    st.span_start = t
    scheduler.schedule(st)
    return True


def apply_split_reopened(
    book: Book,
    lifecycle: Lifecycle,
    settings: CorrelationSettings,
    incident_id: str,
    t: float,
) -> list[IncidentEvent]:
    """Undo the incident's provisional reopen because a related series of another domain
    alerted at ``t``; returns the ``resolved`` event of the incident and the ``opened``
    event of the incident split off (nothing when the reopen is over or brought no alerts)."""
    st = book.states.get(incident_id)
    if (
        st is None
        or st.reopen_t is None
        or not 0 <= t - st.reopen_t <= settings.burst_merge_s
        or len(st.members) <= st.reopen_at
    ):
        return []
    at = to_dt(t)
    resolved, detail, nst = lifecycle.split_reopened(st, at)
    opened = emit(
        nst, EventType.opened, at, detail + " (a related series alerted in another domain)"
    )
    return [resolved, opened]
