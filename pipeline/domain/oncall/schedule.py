"""Schedules and the answer to "who is on call at this instant, and why".

A schedule has a time zone, layers listed highest priority first, and overrides. Who is on
call: the highest layer that has someone not on leave, then swaps, then covers
(:mod:`.overrides`). The answer is piecewise constant: it can change only where a layer or
an override changes, so ``until`` is found by walking those change points.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pipeline.domain.oncall.layers import Layer, earliest, latest
from pipeline.domain.oncall.overrides import Override
from pipeline.domain.oncall.wallclock import utc

HORIZON = timedelta(days=400)
MAX_STEPS = 5000
Source = Literal["layer", "override", "nobody"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """``layers`` highest priority first; ``time_zone`` is an IANA zone name."""

    name: str
    time_zone: str
    layers: tuple[Layer, ...]
    overrides: tuple[Override, ...] = ()
    tz: ZoneInfo = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", ZoneInfo(self.time_zone))

    def people(self) -> set[str]:
        out = {p for layer in self.layers for p in layer.participants()}
        out.update(o.person for o in self.overrides)
        out.update(o.other for o in self.overrides if o.other)
        return out


@dataclass(frozen=True, slots=True)
class OnCall:
    """Who is on call on ``schedule`` at ``at`` and why.

    ``source`` is the layer or override that decided; ``since`` is when that decision began
    (its shift, window or override started, or the layers above it fell silent; None: not
    known) and ``until`` when the person next changes (None: not within 400 days, or not
    within 5,000 changes of the layers and overrides).
    ``reason`` says it in one line."""

    schedule: str
    at: datetime
    person: str | None
    source: Source
    layer: str | None
    override: str | None
    since: datetime | None
    until: datetime | None
    reason: str

    def key(self) -> tuple[str | None, Source, str | None, str | None]:
        return (self.person, self.source, self.layer, self.override)

    def to_dict(self) -> dict[str, object]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat().replace("+00:00", "Z")

        return {
            "schedule": self.schedule,
            "at": iso(self.at),
            "person": self.person,
            "source": self.source,
            "layer": self.layer,
            "override": self.override,
            "since": iso(self.since),
            "until": iso(self.until),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class _Point:
    """The answer at one instant, with the next instant anything it depends on changes."""

    answer: OnCall
    next_change: datetime | None


def _at(schedule: Schedule, t: datetime) -> _Point:
    tz = schedule.tz
    active = [o for o in schedule.overrides if o.active(t)]
    on_leave = {o.person: o for o in active if o.kind == "leave"}
    change = earliest(
        *(o.start for o in schedule.overrides if o.start > t),
        *(o.end for o in schedule.overrides if o.end > t),
    )
    person: str | None = None
    source: Source = "nobody"
    layer_name: str | None = None
    override_id: str | None = None
    since: datetime | None = None
    notes: list[str] = []
    passed_over: datetime | None = None  # when the higher layers last changed to nobody
    for layer in schedule.layers:
        state = layer.state(t, tz)
        change = earliest(change, state.until)
        if person is not None:
            continue
        if state.person is None:
            passed_over = latest(passed_over, state.since)
            continue
        leave = on_leave.get(state.person)
        if leave is not None:
            notes.append(f"{leave.describe()} on layer {layer.name!r}")
            passed_over = latest(passed_over, state.since, leave.start)
            continue
        person, source, layer_name = state.person, "layer", layer.name
        since = latest(state.since, passed_over)
        notes.insert(0, f"layer {layer.name!r} ({state.detail})" if state.detail else "")
    for o in active:
        if o.kind == "swap" and person in (o.person, o.other):
            person = o.other if person == o.person else o.person
            source, override_id, since = "override", o.id, latest(since, o.start)
            notes.append(o.describe())
    for o in active:
        if o.kind == "cover" and (o.other is None or o.other == person):
            replaced = person
            person, source, override_id, since = o.person, "override", o.id, o.start
            notes.append(o.describe() + (f" instead of {replaced}" if replaced else ""))
    reason = "; ".join(n for n in notes if n) or "no layer has anyone on call"
    answer = OnCall(schedule.name, t, person, source, layer_name, override_id, since, None, reason)
    return _Point(answer, change)


def who(schedule: Schedule, at: datetime) -> OnCall:
    """Who is on call on ``schedule`` at the aware instant ``at``, why, and until when."""
    at = utc(at)
    point = _at(schedule, at)
    until = _next_person_change(schedule, point)
    tz = schedule.tz
    answer = point.answer
    text = answer.person or "nobody"
    text += f": {answer.reason}"
    text += f", until {until.astimezone(tz):%Y-%m-%d %H:%M %Z}" if until else ", no end in sight"
    return OnCall(
        answer.schedule,
        at,
        answer.person,
        answer.source,
        answer.layer,
        answer.override,
        answer.since,
        until,
        text,
    )


def _next_person_change(schedule: Schedule, point: _Point) -> datetime | None:
    limit = point.answer.at + HORIZON
    t = point.next_change
    for _ in range(MAX_STEPS):
        if t is None or t >= limit:
            return None
        nxt = _at(schedule, t)
        if nxt.answer.person != point.answer.person:
            return t
        t = nxt.next_change
    return None  # still the same person after MAX_STEPS changes of the inputs


@dataclass(frozen=True, slots=True)
class Segment:
    """``person`` on call from ``start`` to ``end`` (UTC), decided by ``source``."""

    start: datetime
    end: datetime
    person: str | None
    source: Source
    layer: str | None
    override: str | None
    reason: str


def timeline(schedule: Schedule, start: datetime, end: datetime) -> list[Segment]:
    """The schedule between two aware instants as consecutive segments that tile
    ``[start, end)``; adjacent pieces with the same person and source are merged."""
    return list(_segments(schedule, utc(start), utc(end)))


def _segments(schedule: Schedule, start: datetime, end: datetime) -> Iterator[Segment]:
    t = start
    current: Segment | None = None
    while t < end:
        point = _at(schedule, t)
        a = point.answer
        stop = min(point.next_change or end, end)
        if (
            current is not None
            and (current.person, current.source, current.layer)
            == (
                a.person,
                a.source,
                a.layer,
            )
            and current.override == a.override
        ):
            current = Segment(
                current.start, stop, a.person, a.source, a.layer, a.override, a.reason
            )
        else:
            if current is not None:
                yield current
            current = Segment(t, stop, a.person, a.source, a.layer, a.override, a.reason)
        t = stop
    if current is not None:
        yield current
