"""When a group could still take an alert, and when the merge stage looks at a record again.

These mirror the correlator's own rules (:mod:`pipeline.domain.correlate.relate`,
:mod:`~pipeline.domain.correlate.schedule`) at group level: a group stands for one
single-domain incident, so it is joinable when that incident would be.
"""

from __future__ import annotations

from pipeline.domain.correlate import CorrelationSettings
from pipeline.domain.correlate.settings import span_end
from pipeline.domain.merge.state import INF, Group, Record


def group_joinable(s: CorrelationSettings, grp: Group, t: float) -> bool:
    """Would the single-domain incident ``grp`` stands for take an alert at ``t``?

    Its newest alert within ``join_gap_s``, some member still matched by its correlator
    (or matched until after ``t``), within its ``max_span_s`` (:func:`span_end`), not
    resolved by ``t``.
    """
    if grp.last_t < t - s.join_gap_s:
        return False
    if not grp.matching and grp.matching_end <= t:
        return False
    if s.max_span_s > 0 and t > span_end(grp.first_t, s.max_span_s):
        return False
    return not (not grp.unresolved and grp.resolved_t <= t)


def join_end(s: CorrelationSettings, grp: Group) -> float:
    """Event time after which no alert can join ``grp`` any more (nor reopen it)."""
    d = grp.last_t + s.join_gap_s + s.allowed_lateness_s
    if s.max_span_s > 0:
        d = min(d, span_end(grp.first_t, s.max_span_s) + s.allowed_lateness_s)
    if not grp.unresolved and grp.resolved_t > -INF:
        d = max(d, grp.resolved_t + s.reopen_window_s + s.allowed_lateness_s)
    return d


def record_due(s: CorrelationSettings, rec: Record, grp: Group) -> float | None:
    """When to look at ``rec`` again: unindex it at its group's join end; forget it once
    resolved (or absorbed) and past the reopen window."""
    if rec.indexed:
        return join_end(s, grp)
    if rec.status == "resolved":
        resolved = rec.resolved_t if rec.resolved_t is not None else rec.last_t
        return max(
            max(resolved, rec.last_t) + s.reopen_window_s,
            rec.last_t + s.join_gap_s + s.allowed_lateness_s,
        )
    return None
