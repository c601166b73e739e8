"""iCalendar (RFC 5545) in and out: calendar layers, imports and per-schedule/person feeds.

Import: every event of a calendar (with RRULE, RDATE, EXDATE and per-instance changes,
expanded by ``recurring-ical-events``) is a shift of the person it names: an ATTENDEE's
e-mail or the SUMMARY, matched against people's ids, names and ``email`` handles. Where
events overlap, the one that started last holds (a later booking on top, as an override).
Events without a zone (floating times, all-day events) are wall time in the schedule's zone.

Export: a schedule's (or a person's) merged on-call segments as events in UTC, with stable
UIDs so calendar clients update rather than duplicate them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events

from pipeline.domain.oncall.directory import Person
from pipeline.domain.oncall.layers import LayerState
from pipeline.domain.oncall.schedule import Schedule, Segment
from pipeline.domain.oncall.wallclock import to_instant

LOOKAHEAD = (timedelta(days=7), timedelta(days=62), timedelta(days=400))
EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday: buckets are UTC weeks
BUCKET = timedelta(weeks=1)
MAX_BUCKETS = 1024  # expanded weeks kept per calendar layer (about 20 years)


class IcalError(ValueError):
    """The calendar cannot be read or names someone unknown; one line."""


def _parse(ics: str, where: str) -> icalendar.Calendar:
    try:
        cal = icalendar.Calendar.from_ical(ics)
    except ValueError as exc:
        raise IcalError(f"{where}: not an iCalendar file ({exc})") from None
    if not isinstance(cal, icalendar.Calendar):
        raise IcalError(f"{where}: expected one VCALENDAR")
    return cal


def _instant(value: Any, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return to_instant(value, tz)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return to_instant(datetime.combine(value, time()), tz)
    raise IcalError(f"unexpected date value {value!r}")


def _identities(event: Any) -> list[str]:
    out: list[str] = []
    attendees = event.get("ATTENDEE")
    if attendees is not None:
        for a in attendees if isinstance(attendees, list) else [attendees]:
            out.append(str(a).removeprefix("mailto:").removeprefix("MAILTO:").lower())
    summary = event.get("SUMMARY")
    if summary:
        out.append(str(summary).strip().lower())
    return out


def match_people(people: Mapping[str, Person]) -> dict[str, str]:
    """Lower-cased ids, names and e-mail handles -> person id."""
    keys: dict[str, str] = {}
    for pid, person in people.items():
        keys[pid.lower()] = pid
        if person.name:
            keys[person.name.lower()] = pid
        email = person.handles.get("email")
        if email:
            keys[email.lower()] = pid
    return keys


@dataclass(frozen=True, slots=True)
class _Occurrence:
    start: datetime
    end: datetime
    person: str
    summary: str


@dataclass(frozen=True, slots=True)
class CalendarLayer:
    """A layer whose shifts are the events of an iCalendar text; ``people`` maps the
    identities the events use (lower-cased) to person ids."""

    name: str
    ics: str
    people: Mapping[str, str]
    _cal: icalendar.Calendar = field(init=False, compare=False, repr=False)
    _buckets: dict[tuple[int, str], tuple[_Occurrence, ...]] = field(
        init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cal", _parse(self.ics, f"layer {self.name!r}"))
        object.__setattr__(self, "_buckets", {})

    def participants(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.people.values())))

    def _between(self, start: datetime, end: datetime, tz: ZoneInfo) -> list[_Occurrence]:
        """Occurrences overlapping ``[start, end)``, from week-long buckets expanded once."""
        first = (start - EPOCH) // BUCKET
        last = (end - EPOCH) // BUCKET
        found: set[_Occurrence] = set()
        for bucket in range(first, last + 1):
            found.update(self._bucket(bucket, tz))
        return sorted(
            (o for o in found if o.end > start and o.start < end),
            key=lambda o: (o.start, o.end, o.person),
        )

    def _bucket(self, bucket: int, tz: ZoneInfo) -> tuple[_Occurrence, ...]:
        key = (bucket, tz.key)
        cached = self._buckets.get(key)
        if cached is None:
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.clear()
            begin = EPOCH + bucket * BUCKET
            cached = tuple(self._expand(begin, begin + BUCKET, tz))
            self._buckets[key] = cached
        return cached

    def _expand(self, start: datetime, end: datetime, tz: ZoneInfo) -> list[_Occurrence]:
        out = []
        # A day of slack each side: all-day and floating events are matched by their dates,
        # which the library reads in the zone of the query; the exact cut is ours.
        span = (start - timedelta(days=1)).astimezone(tz), (end + timedelta(days=1)).astimezone(tz)
        for event in recurring_ical_events.of(self._cal).between(*span):
            if "DTSTART" not in event:
                continue
            begin = _instant(event["DTSTART"].dt, tz)
            if "DTEND" in event:
                stop = _instant(event["DTEND"].dt, tz)
            elif "DURATION" in event:
                stop = begin + event["DURATION"].dt
            else:
                stop = begin + (
                    timedelta(days=1)
                    if not isinstance(event["DTSTART"].dt, datetime)
                    else timedelta(0)
                )
            person = next((self.people[i] for i in _identities(event) if i in self.people), None)
            if person is None or stop <= begin or stop <= start or begin >= end:
                continue
            out.append(_Occurrence(begin, stop, person, str(event.get("SUMMARY", ""))))
        return out

    def state(self, t: datetime, tz: ZoneInfo) -> LayerState:
        # between() returns every occurrence overlapping the span, however early it began.
        around = self._between(t, t + timedelta(seconds=1), tz)
        active = [o for o in around if o.start <= t < o.end]
        if active:
            holder = max(active, key=lambda o: o.start)
            later = self._between(t + timedelta(microseconds=1), holder.end, tz)
            takeover = [o.start for o in later if o.start > t]
            until = min([holder.end, *takeover])
            return LayerState(
                holder.person, holder.start, until, f"calendar event {holder.summary!r}"
            )
        for ahead in LOOKAHEAD:
            upcoming = [o.start for o in self._between(t, t + ahead, tz) if o.start > t]
            if upcoming:
                return LayerState(None, None, min(upcoming), "no calendar event")
        return LayerState(None, None, None, "no calendar event")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "calendar": self.ics, "people": dict(self.people)}


def calendar_layer_from_dict(
    data: Mapping[str, Any], where: str, people: Mapping[str, Person]
) -> CalendarLayer:
    """The stored form (``name``, ``calendar`` text, optional ``people`` map)."""
    name = str(data.get("name") or "")
    if not name:
        raise ValueError(f"{where}: a calendar layer needs a 'name'")
    mapping = data.get("people")
    if mapping is None:
        return import_ical_layer(str(data["calendar"]), name, people, where)
    try:
        return CalendarLayer(
            name, str(data["calendar"]), {str(k): str(v) for k, v in mapping.items()}
        )
    except IcalError as exc:
        raise ValueError(str(exc)) from None


def import_ical_layer(
    ics: str, name: str, people: Mapping[str, Person], where: str = "calendar"
) -> CalendarLayer:
    """A calendar layer from iCalendar text; every event must name a known person."""
    cal = _parse(ics, where)
    keys = match_people(people)
    used: dict[str, str] = {}
    events = list(cal.walk("VEVENT"))
    if not events:
        raise IcalError(f"{where}: the calendar has no events")
    for event in events:
        ids = _identities(event)
        hit = next((i for i in ids if i in keys), None)
        if hit is None:
            uid = event.get("UID", "?")
            named = ", ".join(ids) or "no SUMMARY or ATTENDEE"
            raise IcalError(
                f"{where}: event {uid} names nobody known ({named}); add them to people "
                "(id, name or handles.email)"
            )
        used[hit] = keys[hit]
    layer = CalendarLayer(name, ics, used)
    try:  # expand once so a broken RRULE fails here, not at the first question
        layer._between(
            datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 2, tzinfo=UTC), ZoneInfo("UTC")
        )
    except Exception as exc:
        raise IcalError(f"{where}: cannot expand the recurrences ({exc})") from None
    return layer


def import_ical(
    ics: str, schedule: str, time_zone: str, people: Mapping[str, Person], where: str = "calendar"
) -> Schedule:
    """A one-layer schedule from an iCalendar text."""
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise IcalError(
            f"unknown time zone {time_zone!r} (use an IANA name like Europe/Berlin)"
        ) from None
    return Schedule(schedule, time_zone, (import_ical_layer(ics, "calendar", people, where),))


def export_ical(
    name: str,
    segments: Iterable[Segment],
    people: Mapping[str, Person],
    stamp: datetime,
) -> bytes:
    """An iCalendar feed named ``name`` with one event per on-call segment (nobody's
    segments are left out); ``stamp`` is the DTSTAMP (the export time)."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//stormwatch//on-call//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for s in segments:
        if s.person is None:
            continue
        person = people.get(s.person)
        who = person.display if person else s.person
        event = icalendar.Event()
        uid = hashlib.sha1(f"{name}|{s.start.isoformat()}|{s.person}".encode()).hexdigest()
        event.add("uid", f"{uid}@stormwatch")
        event.add("dtstamp", stamp.astimezone(UTC))
        event.add("dtstart", s.start.astimezone(UTC))
        event.add("dtend", s.end.astimezone(UTC))
        event.add("summary", f"On call: {who}")
        event.add("description", s.reason)
        if person and person.handles.get("email"):
            attendee = icalendar.vCalAddress(f"mailto:{person.handles['email']}")
            attendee.params["cn"] = icalendar.vText(who)
            event.add("attendee", attendee, encode=False)
        cal.add_component(event)
    return cal.to_ical()
