"""Bounded incident events: what goes on ``incidents`` fits the broker, however big the storm.

An incident event carries what a pager needs: status, severity, root cause and candidates,
the explanation, counts of member alerts per service and alert name, and the most
significant members (firing and unsuppressed first, then by severity, newest first) up to
``max_alerts``. The counts and ``alert_count`` are the incident's own (the correlator keeps
them for every member, including those a big incident no longer holds; see
:mod:`pipeline.domain.correlate.compaction`); an incident without them is counted from its
members. When the encoding still exceeds ``max_bytes``, fewer members, candidates and
counts are listed, and long texts are cut, until it fits; every cut is counted in the
event (``alerts_omitted``, ``counts_omitted``). The full membership is kept in the store.

Views are copies: the live incident is never changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from pipeline.domain.schemas import (
    SEVERITY_RANK,
    AlertCount,
    AlertRef,
    AlertStatus,
    Incident,
    IncidentEvent,
    encode,
)

#: the smallest bound an event can always meet (ids, counts and a short explanation)
MIN_EVENT_BYTES = 4096


@dataclass(frozen=True)
class EventLimits:
    #: encoded event size at most (bytes)
    max_bytes: int = 262_144
    #: members listed at most
    max_alerts: int = 100
    #: (service, alert name) counts listed at most
    max_counts: int = 200
    #: root-cause candidates listed at most
    max_candidates: int = 10

    def __post_init__(self) -> None:
        if self.max_bytes < MIN_EVENT_BYTES:
            raise ValueError(f"max_bytes must be at least {MIN_EVENT_BYTES}")


def alert_counts(alerts: list[AlertRef]) -> list[AlertCount]:
    """Members per (service, name) counted from ``alerts``, most first (ties by service,
    name)."""
    total: Counter[tuple[str, str]] = Counter()
    firing: Counter[tuple[str, str]] = Counter()
    for ref in alerts:
        key = (ref.service, ref.name)
        total[key] += 1
        if ref.status is AlertStatus.firing:
            firing[key] += 1
    ordered = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
    return [AlertCount(service=s, name=n, count=c, firing=firing[(s, n)]) for (s, n), c in ordered]


def counts_of(inc: Incident) -> list[AlertCount]:
    """The incident's counts, most first: those it carries (the correlator keeps them for
    every member, listed or forgotten), else counted from its listed members."""
    if inc.alert_counts:
        return sorted(inc.alert_counts, key=lambda c: (-c.count, c.service, c.name))
    return alert_counts(inc.alerts)


def significant(alerts: list[AlertRef], n: int) -> list[AlertRef]:
    """The ``n`` most significant members (firing before resolved, unsuppressed before
    suppressed, then by severity, newest first), listed in membership order.

    One pass from the newest member into 16 classes, stopping once the best class alone
    holds ``n``: a storm's incident is found in its newest members, not by sorting them all.
    """
    if len(alerts) <= n:
        return list(alerts)
    if n <= 0:
        return []
    buckets: list[list[int]] = [[] for _ in range(16)]
    best = buckets[0]
    firing = AlertStatus.firing
    for i in range(len(alerts) - 1, -1, -1):
        ref = alerts[i]
        cls = (ref.status is not firing) * 8 + ref.suppressed * 4 + 3 - SEVERITY_RANK[ref.severity]
        buckets[cls].append(i)
        if len(best) >= n:
            break
    chosen: list[int] = []
    for bucket in buckets:
        chosen.extend(bucket[: n - len(chosen)])
        if len(chosen) >= n:
            break
    return [alerts[i] for i in sorted(chosen)]


def view(inc: Incident, n_alerts: int, n_counts: int, n_candidates: int, text: int) -> Incident:
    """A copy of ``inc`` listing at most the given numbers of members, counts, candidates and
    characters of explanation."""
    listed = significant(inc.alerts, n_alerts)
    counts = counts_of(inc)
    total = max(inc.alert_count, len(inc.alert_ids), len(inc.alerts))
    explanation = inc.explanation
    if len(explanation) > text:
        explanation = explanation[: max(0, text - 1)] + "…"
    return msgspec.structs.replace(
        inc,
        alerts=listed,
        alert_ids=[ref.id for ref in listed],
        alert_count=total,
        alerts_omitted=total - len(listed),
        alert_counts=counts[:n_counts],
        counts_omitted=len(counts) - min(len(counts), n_counts) + inc.counts_omitted,
        root_cause_candidates=inc.root_cause_candidates[:n_candidates],
        explanation=explanation,
    )


def encode_event(ev: IncidentEvent, limits: EventLimits) -> bytes:
    """``ev`` encoded within ``limits.max_bytes`` (see module docstring)."""
    return _fit(
        limits,
        lambda inc, text: encode(
            msgspec.structs.replace(ev, incident=inc, detail=ev.detail[:text])
        ),
        ev.incident,
        lambda: minimal_event(ev),
    )


def encode_event_and_record(ev: IncidentEvent, limits: EventLimits) -> tuple[bytes, bytes]:
    """``ev`` encoded within the bound, and the incident record (the same bounded view of
    the incident alone) from the same view: one view per published event, not two."""
    last: list[tuple[bytes, Incident]] = []

    def render(inc: Incident, text: int) -> bytes:
        data = encode(msgspec.structs.replace(ev, incident=inc, detail=ev.detail[:text]))
        last[:] = [(data, inc)]
        return data

    data = _fit(limits, render, ev.incident, lambda: minimal_event(ev))
    if last and last[0][0] is data:  # a view fitted (not the minimal last resort)
        return data, encode(last[0][1])
    return data, encode_incident(ev.incident, limits)


def encode_incident(inc: Incident, limits: EventLimits) -> bytes:
    """The bounded view of ``inc`` alone (the incident record in the store)."""
    return _fit(
        limits,
        lambda view_, _text: encode(view_),
        inc,
        lambda: encode(minimal_incident(inc)),
    )


def _fit(
    limits: EventLimits,
    render: Callable[[Incident, int], bytes],
    inc: Incident,
    last_resort: Callable[[], bytes],
) -> bytes:
    """The first rendering of smaller and smaller views of ``inc`` within the bound."""
    n_alerts, n_counts, n_cands, text = (
        limits.max_alerts,
        limits.max_counts,
        limits.max_candidates,
        16_384,
    )
    while True:
        data = render(view(inc, n_alerts, n_counts, n_cands, text), text)
        if len(data) <= limits.max_bytes:
            return data
        if n_alerts == 0 and n_counts <= 1 and n_cands <= 1 and text <= 256:
            return last_resort()
        n_alerts //= 2
        n_counts //= 2
        n_cands = max(1, n_cands // 2)
        text = max(256, text // 2)


def minimal_event(ev: IncidentEvent) -> bytes:
    """The smallest useful encoding of ``ev``: what changed, the root cause and counts only,
    with every free text cut short (the last resort when a broker refuses bigger ones)."""
    small = minimal_incident(ev.incident)
    return encode(
        IncidentEvent(
            type=ev.type,
            incident=small,
            at=ev.at,
            detail=ev.detail[:200],
            escalation=ev.escalation,
        )
    )


def minimal_incident(inc: Incident) -> Incident:
    """``inc`` reduced to ids, status, root cause and counts, free texts cut short."""
    total = max(inc.alert_count, len(inc.alert_ids), len(inc.alerts))
    return Incident(
        id=inc.id[:200],
        status=inc.status,
        opened_at=inc.opened_at,
        updated_at=inc.updated_at,
        resolved_at=inc.resolved_at,
        severity=inc.severity,
        services=inc.services[:20],
        root_cause=inc.root_cause[:200] if inc.root_cause else None,
        explanation=inc.explanation[:200],
        page=inc.page,
        priority=inc.priority,
        domain=inc.domain[:200],
        merged_into=inc.merged_into[:200] if inc.merged_into else None,
        version=inc.version,
        alert_count=total,
        alerts_omitted=total,
        counts_omitted=len(inc.alert_counts or alert_counts(inc.alerts)),
    )
