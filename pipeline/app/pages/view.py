"""What the incident pages show, computed from an incident record: no I/O, no markup.

:func:`incident_view` turns one record (the bounded view the worker stores in Redis) into
the facts, the topology picture (:mod:`pipeline.domain.incident_graph`), the alert timeline
(one lane per service, one bar per member alert from when it fired to when it resolved),
the per-service summary and the chronological list of alert changes; :func:`list_view`
turns the newest records into the rows of the incident list. Everything here is data;
the templates escape it when they render it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from pipeline.domain.event_view import counts_of
from pipeline.domain.explain import fmt_delay
from pipeline.domain.incident_graph import IncidentGraph, Role, incident_graph
from pipeline.domain.schemas import (
    AlertCount,
    AlertRef,
    AlertStatus,
    Incident,
    IncidentStatus,
    RootCauseCandidate,
    Severity,
)
from pipeline.domain.topology import Topology

#: timeline geometry (pixels): service label column, plot width, one sub-row of bars
LABEL_W = 190.0
PLOT_W = 1060.0
ROW_H = 14.0
LANE_PAD = 8.0
AXIS_H = 26.0
#: overlapping alerts of one service stack in at most this many sub-rows
MAX_SUBROWS = 8
#: alert changes listed at most (the timeline shows every listed member)
MAX_CHANGES = 300
#: tick steps of the time axis (seconds)
_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)


class PageIncident(Incident, kw_only=True):
    """An incident record as the page reads it: fields other parts of stormwatch may add to
    the record (who should respond, the runbook) are shown when present, whatever their
    shape."""

    responders: Any = None
    runbook: Any = None


_record_decoder = msgspec.json.Decoder(PageIncident)


class RecordError(ValueError):
    """An incident record that does not decode; the message says what is wrong."""


def decode_record(record: bytes) -> PageIncident:
    try:
        return _record_decoder.decode(record)
    except msgspec.DecodeError as exc:
        raise RecordError(f"the incident record does not decode: {exc}") from None


@dataclass(frozen=True)
class Bar:
    x0: float
    x1: float
    y: float
    severity: Severity
    firing: bool
    suppressed: bool
    title: str


@dataclass(frozen=True)
class Lane:
    service: str
    role: Role
    y: float
    height: float
    bars: list[Bar]


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Marker:
    x: float
    label: str
    kind: str


@dataclass(frozen=True)
class Timeline:
    width: float
    height: float
    lanes: list[Lane]
    ticks: list[Tick]
    markers: list[Marker]
    start: datetime
    end: datetime


@dataclass(frozen=True)
class ServiceRow:
    service: str
    role: Role
    alerts: int
    firing: int
    names: list[str]
    first_seen: datetime | None
    last_change: datetime | None


@dataclass(frozen=True)
class Change:
    at: datetime
    offset: str
    what: str  # "fired" or "resolved"
    ref: AlertRef


@dataclass(frozen=True)
class IncidentView:
    inc: PageIncident
    now: datetime
    graph: IncidentGraph
    timeline: Timeline | None
    services: list[ServiceRow]
    changes: list[Change]
    changes_omitted: int
    counts: list[AlertCount]
    candidates: list[RootCauseCandidate]
    explanation: list[str]
    members_recorded: int
    age: str
    facts: list[tuple[str, str]] = field(default_factory=list)

    def when(self, ts: datetime | None) -> str:
        """``ts`` as a time of day when it is on the day the incident opened, else in full."""
        if ts is None:
            return "—"
        if ts.astimezone(UTC).date() == self.inc.opened_at.astimezone(UTC).date():
            return ts.astimezone(UTC).strftime("%H:%M:%SZ")
        return fmt_time(ts)


def incident_view(
    inc: PageIncident, topology: Topology, now: datetime, members_recorded: int
) -> IncidentView:
    """Everything the incident page shows about ``inc`` at ``now``."""
    graph = incident_graph(topology, inc)
    roles = {n.name: n.role for n in graph.nodes}
    changes = _changes(inc)
    return IncidentView(
        inc=inc,
        now=now,
        graph=graph,
        timeline=timeline(inc, roles, now),
        services=_services(inc, roles),
        changes=changes[:MAX_CHANGES],
        changes_omitted=max(0, len(changes) - MAX_CHANGES),
        counts=counts_of(inc),
        candidates=list(inc.root_cause_candidates),
        explanation=[line for line in inc.explanation.splitlines() if line.strip()],
        members_recorded=members_recorded,
        age=duration(inc, now),
        facts=_facts(inc, now),
    )


def duration(inc: Incident, now: datetime) -> str:
    """How long the incident has been open (until it resolved)."""
    end = inc.resolved_at if inc.resolved_at is not None else now
    return fmt_delay((end - inc.opened_at).total_seconds())


def fmt_time(ts: datetime | None) -> str:
    if ts is None:
        return "—"
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _facts(inc: PageIncident, now: datetime) -> list[tuple[str, str]]:
    facts = [
        ("Opened", fmt_time(inc.opened_at)),
        ("Last change", fmt_time(inc.updated_at)),
    ]
    if inc.resolved_at is not None:
        facts.append(("Resolved", fmt_time(inc.resolved_at)))
    facts.append(("Duration" if inc.resolved_at else "Open for", duration(inc, now)))
    if inc.acknowledged_by or inc.acknowledged_at:
        by = inc.acknowledged_by or "?"
        facts.append(("Acknowledged", f"{by} at {fmt_time(inc.acknowledged_at)}"))
    if inc.resolved_by:
        facts.append(("Resolved by", inc.resolved_by))
    if inc.verdict:
        facts.append(("Verdict", inc.verdict))
    facts.append(("Priority", f"{inc.priority:.2f}"))
    if inc.domain:
        facts.append(("Correlation domain", inc.domain))
    facts.append(("Version", str(inc.version)))
    return facts


def _role(roles: dict[str, Role], service: str) -> Role:
    return roles.get(service, Role.alerting)


def _services(inc: Incident, roles: dict[str, Role]) -> list[ServiceRow]:
    """One row per service of the incident, in the order their first listed alert fired."""
    counts: dict[str, list[int]] = {}
    names: dict[str, list[str]] = {}
    for c in counts_of(inc):  # every member (or the listed ones when no counts are kept)
        tally = counts.setdefault(c.service, [0, 0])
        tally[0] += c.count
        tally[1] += c.firing
        names.setdefault(c.service, []).append(c.name)
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    for ref in inc.alerts:
        t = ref.timestamp
        first[ref.service] = min(first.get(ref.service, t), t)
        changed = max(t, ref.resolved_at) if ref.resolved_at is not None else t
        last[ref.service] = max(last.get(ref.service, changed), changed)
    never = datetime.max.replace(tzinfo=UTC)
    services = sorted(set(counts) | set(inc.services), key=lambda s: (first.get(s, never), s))
    return [
        ServiceRow(
            service=s,
            role=_role(roles, s),
            alerts=counts.get(s, [0, 0])[0],
            firing=counts.get(s, [0, 0])[1],
            names=names.get(s, []),
            first_seen=first.get(s),
            last_change=last.get(s),
        )
        for s in services
    ]


def _changes(inc: Incident) -> list[Change]:
    """Every listed member's fire and resolve, oldest first."""
    out: list[Change] = []
    for ref in inc.alerts:
        out.append(Change(ref.timestamp, _offset(inc, ref.timestamp), "fired", ref))
        if ref.resolved_at is not None:
            out.append(Change(ref.resolved_at, _offset(inc, ref.resolved_at), "resolved", ref))
    out.sort(key=lambda c: (c.at, c.what != "fired", c.ref.service, c.ref.id))
    return out


def _offset(inc: Incident, t: datetime) -> str:
    s = (t - inc.opened_at).total_seconds()
    return ("+" if s >= 0 else "−") + fmt_delay(abs(s))


def _tick_step(span: float) -> int:
    return next((s for s in _STEPS if span / s <= 8), _STEPS[-1])


def timeline(inc: Incident, roles: dict[str, Role], now: datetime) -> Timeline | None:
    """Lanes of bars (see module docstring); None when no member is listed. The time axis
    covers the incident; while alerts fire it runs on to ``now``, unless that would more
    than double it (a replayed or delayed storm: then a firing bar ends in an arrow at the
    incident's last change)."""
    refs = inc.alerts
    if not refs:
        return None
    times = [inc.opened_at, inc.updated_at]
    times += [r.timestamp for r in refs]
    times += [r.resolved_at for r in refs if r.resolved_at is not None]
    if inc.resolved_at is not None:
        times.append(inc.resolved_at)
    if inc.acknowledged_at is not None:
        times.append(inc.acknowledged_at)
    start, end = min(times), max(times)
    extended = (
        inc.resolved_at is None
        and any(r.status is AlertStatus.firing for r in refs)
        and end < now
        and (now - end) <= max(timedelta(minutes=1), end - start)
    )
    if extended:  # firing alerts fire until now (unless now is far beyond the incident)
        end = now
    span = max(60.0, (end - start).total_seconds() * 1.04)

    def x(t: datetime) -> float:
        return LABEL_W + (t - start).total_seconds() / span * PLOT_W

    by_service: dict[str, list[AlertRef]] = {}
    for ref in sorted(refs, key=lambda r: (r.timestamp, r.id)):
        by_service.setdefault(ref.service, []).append(ref)
    lanes: list[Lane] = []
    y = AXIS_H
    for service, members in by_service.items():
        ends: list[float] = []  # right end of the last bar of each sub-row
        placed: list[tuple[int, float, float, AlertRef]] = []
        for ref in members:
            x0 = x(ref.timestamp)
            firing = ref.status is AlertStatus.firing
            x1 = x(ref.resolved_at) if ref.resolved_at is not None else (x(end) if firing else x0)
            x1 = max(x1, x0 + 4.0)
            row = next((i for i, e in enumerate(ends) if e + 2 <= x0), None)
            if row is None:
                if len(ends) < MAX_SUBROWS:
                    ends.append(x1)
                    row = len(ends) - 1
                else:
                    row = min(range(len(ends)), key=lambda i: ends[i])
            ends[row] = max(ends[row], x1)
            placed.append((row, x0, x1, ref))
        height = LANE_PAD * 2 + ROW_H * max(1, len(ends))
        bars = [
            Bar(
                x0=round(x0, 1),
                x1=round(x1, 1),
                y=round(y + LANE_PAD + row * ROW_H, 1),
                severity=ref.severity,
                firing=ref.status is AlertStatus.firing,
                suppressed=ref.suppressed,
                title=_bar_title(inc, ref),
            )
            for row, x0, x1, ref in placed
        ]
        lanes.append(Lane(service, _role(roles, service), round(y, 1), height, bars))
        y += height
    step = _tick_step(span)
    first_tick = (int(start.timestamp()) // step + 1) * step
    ticks = []
    t = float(first_tick)
    while t <= start.timestamp() + span:
        at = datetime.fromtimestamp(t, UTC)
        ticks.append(Tick(round(x(at), 1), at.strftime("%H:%M:%S" if step < 60 else "%H:%M")))
        t += step
    markers = [Marker(round(x(inc.opened_at), 1), "opened", "opened")]
    if inc.acknowledged_at is not None:
        markers.append(Marker(round(x(inc.acknowledged_at), 1), "acknowledged", "ack"))
    if inc.resolved_at is not None:
        markers.append(Marker(round(x(inc.resolved_at), 1), "resolved", "resolved"))
    if extended:
        markers.append(Marker(round(x(now), 1), "now", "now"))
    return Timeline(
        width=LABEL_W + PLOT_W + 20,
        height=round(y + 8, 1),
        lanes=lanes,
        ticks=ticks,
        markers=markers,
        start=start,
        end=end,
    )


def _bar_title(inc: Incident, ref: AlertRef) -> str:
    state = "firing" if ref.status is AlertStatus.firing else "resolved"
    if ref.resolved_at is not None:
        state = f"resolved {fmt_time(ref.resolved_at)}"
    elif ref.status is AlertStatus.resolved:
        state = "resolved (went stale)"
    parts = [
        f"{ref.service} {ref.name} ({ref.severity.value})",
        f"fired {fmt_time(ref.timestamp)} ({_offset(inc, ref.timestamp)}), {state}",
        f"alert {ref.id}",
    ]
    if ref.reason:
        parts.append(f"joined: {ref.reason}")
    if ref.suppressed:
        parts.append("suppressed: a symptom of the root cause")
    return "\n".join(parts)


@dataclass(frozen=True)
class ListRow:
    id: str
    status: IncidentStatus
    open: bool
    severity: Severity
    root_cause: str | None
    services: list[str]
    alert_count: int
    opened_at: datetime
    updated_at: datetime
    age: str
    page: bool
    merged_into: str | None


class _Summary(msgspec.Struct, kw_only=True):
    """The fields of a record the list shows (the rest of the record is skipped)."""

    id: str
    status: IncidentStatus
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    severity: Severity = Severity.warning
    services: list[str] = []
    root_cause: str | None = None
    page: bool = True
    merged_into: str | None = None
    alert_count: int = 0
    alert_ids: list[str] = []


_summary_decoder = msgspec.json.Decoder(_Summary)


@dataclass(frozen=True)
class ListView:
    open: list[ListRow]
    closed: list[ListRow]
    open_count: int
    unreadable: int
    now: datetime


def list_view(
    ids: list[str],
    is_open: set[str],
    records: list[bytes | None],
    open_count: int,
    now: datetime,
) -> ListView:
    """Rows of the incident list: open incidents first, then recently closed ones, each
    newest change first; expired records are skipped, ones that do not decode counted."""
    open_rows: list[ListRow] = []
    closed: list[ListRow] = []
    unreadable = 0
    for iid, record in zip(ids, records, strict=True):
        if record is None:
            continue
        try:
            s = _summary_decoder.decode(record)
        except msgspec.DecodeError:
            unreadable += 1
            continue
        end = s.resolved_at if s.resolved_at is not None else now
        row = ListRow(
            id=s.id,
            status=s.status,
            open=iid in is_open and s.merged_into is None,
            severity=s.severity,
            root_cause=s.root_cause,
            services=s.services,
            alert_count=max(s.alert_count, len(s.alert_ids)),
            opened_at=s.opened_at,
            updated_at=s.updated_at,
            age=fmt_delay((end - s.opened_at).total_seconds()),
            page=s.page,
            merged_into=s.merged_into,
        )
        (open_rows if row.open else closed).append(row)
    return ListView(open_rows, closed, open_count, unreadable, now)
