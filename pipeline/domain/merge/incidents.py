"""The events a cross-domain group publishes: one incident under the group id built from
its members' latest per-domain incidents, bounded like every incident event
(:mod:`pipeline.domain.event_view`), and the ``merged`` event of an absorbed one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.domain.correlate.labels import of_members
from pipeline.domain.correlate.state import to_dt
from pipeline.domain.event_view import EventLimits, counts_of, significant
from pipeline.domain.merge.explain import group_explanation
from pipeline.domain.merge.state import INF, Group, MergeState
from pipeline.domain.schemas import (
    SEVERITY_RANK,
    AlertCount,
    EventType,
    Incident,
    IncidentEvent,
    IncidentStatus,
)


@dataclass
class Absorbed:
    """A group absorbed into another in this batch (what its ``merged`` event needs)."""

    absorbed: str
    survivor: str
    why: str
    published: bool  # something went out under its id before
    version: int  # the version last published under its id
    domain: str
    opened_at: float


def group_event(
    state: MergeState,
    grp: Group,
    merged: bool,
    events: list[IncidentEvent],
    limits: EventLimits,
) -> IncidentEvent:
    """The group's incident event (``merged``: it grew by a merge in this batch; ``events``:
    its members' events of the batch); records what was published in ``grp``."""
    recs = state.records
    ids = sorted(
        (m for m in grp.members if m in recs and not recs[m].gone),
        key=lambda m: (m != grp.id, recs[m].first_t, m),
    )
    incs = [inc for m in ids if (inc := recs[m].incident) is not None]
    if not grp.published:
        head = recs.get(grp.id)
        if head is not None and head.incident is not None:
            grp.version = max(grp.version, head.incident.version)
    grp.version += 1
    if incs:
        inc = group_incident(grp, incs, limits)
    else:
        t = to_dt(grp.first_t)
        inc = Incident(id=grp.id, status=IncidentStatus.open, opened_at=t, updated_at=t)
    etype = group_event_type(grp, inc, merged, events)
    grp.published = True
    grp.published_status = "resolved" if inc.status is IncidentStatus.resolved else "open"
    grp.published_root = grp.root
    if etype is EventType.merged and grp.reasons:
        detail = grp.reasons[-1]
    else:
        detail = "; ".join(f"{ev.incident.id}: {ev.detail}" for ev in events[:3])
    at = max((ev.at for ev in events), default=inc.updated_at)
    return IncidentEvent(type=etype, incident=inc, at=at, detail=detail)


def group_event_type(
    grp: Group, inc: Incident, merged: bool, events: list[IncidentEvent]
) -> EventType:
    """The most important change since the group's last event."""
    if merged or not grp.published:
        return EventType.merged
    resolved = inc.status is IncidentStatus.resolved
    if resolved and grp.published_status != "resolved":
        return EventType.resolved
    if not resolved and grp.published_status == "resolved":
        return EventType.reopened
    if grp.root != grp.published_root:
        return EventType.root_cause_changed
    if any(ev.type is EventType.escalated for ev in events):
        return EventType.escalated
    return EventType.updated


def absorbed_event(a: Absorbed, survivor: str, watermark: float) -> IncidentEvent:
    """The last event of an incident or group absorbed into the group ``survivor``."""
    at = to_dt(watermark if watermark > -INF else a.opened_at)
    inc = merged_incident(
        a.absorbed, a.domain, to_dt(a.opened_at), survivor, at, a.why, a.version + 1
    )
    return IncidentEvent(
        type=EventType.merged,
        incident=inc,
        at=at,
        detail=f"merged {a.absorbed} into {survivor}: {a.why}",
    )


def group_incident(grp: Group, members: list[Incident], limits: EventLimits) -> Incident:
    """The group's incident: counts summed over ``members`` (its per-domain incidents, the
    group's id member first, then by first alert), the most significant member alerts up to
    the bound, the union
    of services, the root cause re-ranked over the union evidence, status open while any
    member is (acknowledged when every open one is), resolved when all are."""
    head = members[0]
    # each member's most significant, then the most significant of those (in member order;
    # a member's own list may be long offline)
    alerts = [ref for inc in members for ref in significant(inc.alerts, limits.max_alerts)]
    listed = significant(alerts, limits.max_alerts)
    counts: dict[tuple[str, str], list[int]] = {}
    for inc in members:
        for c in inc.alert_counts or counts_of(inc):
            key = (c.service, c.name)
            cur = counts.get(key)
            if cur is None:
                counts[key] = [c.count, c.firing]
            else:
                cur[0] += c.count
                cur[1] += c.firing
    for c in grp.retired_counts:
        cur = counts.setdefault((c.service, c.name), [0, 0])
        cur[0] += c.count
    top = sorted([(-cf[0], key, cf[1]) for key, cf in counts.items()])[: limits.max_counts]
    ordered = [AlertCount(service=s, name=n, count=-c, firing=f) for c, (s, n), f in top]
    omitted = sum(inc.counts_omitted for inc in members)
    total = grp.retired_alerts + sum(
        max(inc.alert_count, len(inc.alert_ids), len(inc.alerts)) for inc in members
    )
    open_ = [inc for inc in members if inc.status is not IncidentStatus.resolved]
    if not open_:
        status = IncidentStatus.resolved
    elif all(inc.status is IncidentStatus.acknowledged for inc in open_):
        status = IncidentStatus.acknowledged
    else:
        status = IncidentStatus.open
    resolved = [inc.resolved_at for inc in members if inc.resolved_at is not None]
    acked = next((inc for inc in members if inc.acknowledged_by), None)
    root = grp.root if grp.root is not None else head.root_cause
    return Incident(
        id=grp.id,
        status=status,
        opened_at=min(inc.opened_at for inc in members),
        updated_at=max(inc.updated_at for inc in members),
        resolved_at=max(resolved) if status is IncidentStatus.resolved and resolved else None,
        severity=max((inc.severity for inc in members), key=lambda s: SEVERITY_RANK[s]),
        alert_ids=[ref.id for ref in listed],
        alerts=listed,
        services=sorted(grp.evidence),
        root_cause=root,
        root_cause_candidates=(grp.candidates or head.root_cause_candidates)[
            : limits.max_candidates
        ],
        explanation=group_explanation(grp),
        page=any(inc.page for inc in members),
        priority=max(inc.priority for inc in members),
        domain=head.domain,
        acknowledged_by=acked.acknowledged_by if acked else None,
        acknowledged_at=acked.acknowledged_at if acked else None,
        version=grp.version,
        alert_count=total,
        alerts_omitted=total - len(listed),
        alert_counts=ordered,
        counts_omitted=len(counts) - len(ordered) + omitted,
        common_labels=of_members(
            root, [(inc.root_cause, inc.services, inc.common_labels) for inc in members]
        ),
    )


def merged_incident(
    iid: str, domain: str, opened_at: datetime, into: str, at: datetime, why: str, version: int
) -> Incident:
    """What an incident absorbed into the group ``into`` publishes last (the semantics of
    an in-domain merge: resolved, no members of its own, ``merged_into`` set)."""
    return Incident(
        id=iid,
        status=IncidentStatus.resolved,
        opened_at=opened_at,
        updated_at=at,
        resolved_at=at,
        domain=domain,
        merged_into=into,
        explanation=f"Merged into {into} across correlation domains: {why}.",
        page=False,
        version=version,
    )


def sum_counts(a: list[AlertCount], b: list[AlertCount]) -> list[AlertCount]:
    """Counts of ``a`` and ``b`` added per (service, alert name)."""
    if not b:
        return a
    out = {
        (c.service, c.name): AlertCount(service=c.service, name=c.name, count=c.count) for c in a
    }
    for c in b:
        cur = out.get((c.service, c.name))
        if cur is None:
            out[(c.service, c.name)] = AlertCount(service=c.service, name=c.name, count=c.count)
        else:
            cur.count += c.count
    return list(out.values())
