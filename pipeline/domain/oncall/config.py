"""The on-call file format: plain data (YAML or JSON) <-> :class:`Directory`.

Every error is one line naming where in the file it is and what would be valid. The dumped
form is the parsed form (times in ISO 8601), so it round-trips through Redis.

```yaml
people:
  alice: {name: Alice Adams, handles: {email: alice@example.com, slack: "@alice"}}
teams:
  payments: {members: [alice, bob], schedules: [payments-primary]}
services: {paymentservice: payments}      # ownership; a topology 'team' field wins
schedules:
  payments-primary:
    time_zone: America/New_York
    layers:                               # highest priority first
      - name: business-hours
        start: 2026-01-05T09:00           # first hand-off, wall time in time_zone
        shift: 1w                         # Nh, Nd or Nw of wall-clock time
        participants: [alice, bob]
        restrictions: [{days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}]
    overrides:
      - {id: o-1, kind: cover, person: bob, other: alice,
         start: 2026-03-02T09:00-05:00, end: 2026-03-03T09:00-05:00}
escalation_policies:                      # :mod:`.escalation`; teams name theirs
  payments: {steps: [{delay: 5m, targets: [{schedule: payments-primary}]}], repeat: 1}
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.domain.oncall.directory import Directory, Person, Team
from pipeline.domain.oncall.escalation import dump_policy, parse_policy
from pipeline.domain.oncall.layers import Layer, RotationLayer
from pipeline.domain.oncall.overrides import KINDS, Override
from pipeline.domain.oncall.restrictions import WEEKDAYS, Window
from pipeline.domain.oncall.rotation import Rotation, ShiftLength
from pipeline.domain.oncall.schedule import Schedule
from pipeline.domain.oncall.wallclock import as_utc, to_wall

SECTIONS = ("people", "teams", "services", "schedules", "escalation_policies")
UNITS = {"h": "hours", "d": "days", "w": "weeks"}
SHIFT_RE = re.compile(r"^\s*(\d+)\s*(h|d|w|hours?|days?|weeks?)\s*$")


class OnCallConfigError(ValueError):
    """The on-call data is malformed; the message names the place and the fix."""


def _fail(where: str, message: str) -> OnCallConfigError:
    return OnCallConfigError(f"{where}: {message}")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, f"expected a list, got {type(value).__name__}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise _fail(where, "expected a non-empty string")
    return str(value)


def parse_zone(value: Any, where: str) -> ZoneInfo:
    name = _str(value, where)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(
            where, f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from None


def parse_time(value: Any, where: str, tz: ZoneInfo) -> datetime:
    """An aware UTC instant from ISO 8601; without an offset it is wall time in ``tz``."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):  # YAML reads 2026-03-02 as a date: its midnight
        parsed = datetime.combine(value, time())
    else:
        try:
            parsed = datetime.fromisoformat(_str(value, where).replace("Z", "+00:00"))
        except ValueError:
            raise _fail(where, f"{value!r} is not an ISO 8601 time like 2026-03-08T09:00") from None
    return as_utc(parsed, tz)


def parse_shift(value: Any, where: str) -> ShiftLength:
    if isinstance(value, Mapping):
        count, unit = value.get("count"), value.get("unit")
        if isinstance(count, int) and unit in UNITS.values():
            return ShiftLength(count, unit)  # type: ignore[arg-type]
        raise _fail(where, "expected {count: N, unit: hours|days|weeks}")
    match = SHIFT_RE.match(str(value))
    if not match or int(match.group(1)) < 1:
        raise _fail(where, f"{value!r} is not a shift length like 12h, 1d or 2w")
    return ShiftLength(int(match.group(1)), UNITS[match.group(2)[0]])  # type: ignore[arg-type]


def _clock(value: Any, where: str) -> time:
    text = str(value)
    if isinstance(value, int) and not isinstance(value, bool):  # YAML reads 09:00 as minutes
        text = f"{value // 60:02d}:{value % 60:02d}"
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise _fail(where, f"{value!r} is not a time of day like 09:00") from None


def parse_window(value: Any, where: str) -> Window:
    data = _mapping(value, where)
    days_raw = data.get("days", list(WEEKDAYS))
    days = set()
    for i, day in enumerate(_list(days_raw, f"{where}.days")):
        key = str(day).lower()[:3]
        if key not in WEEKDAYS:
            raise _fail(f"{where}.days[{i}]", f"{day!r} is not a weekday (mon..sun)")
        days.add(WEEKDAYS.index(key))
    if "start" not in data or ("end" not in data and "hours" not in data):
        raise _fail(where, "a restriction needs 'start' and 'end' times of day (or 'hours')")
    start = _clock(data["start"], f"{where}.start")
    if "hours" in data:
        hours = data["hours"]
        if not isinstance(hours, int | float) or not 0 < hours <= 168:
            raise _fail(f"{where}.hours", f"{hours!r} is not a number of hours in (0, 168]")
        return Window(frozenset(days), start, timedelta(hours=hours))
    return Window.daily(frozenset(days), start, _clock(data["end"], f"{where}.end"))


def parse_layer(value: Any, where: str, tz: ZoneInfo, people: Mapping[str, Person]) -> Layer:
    data = _mapping(value, where)
    if "calendar" in data:
        from pipeline.domain.oncall.ical import calendar_layer_from_dict

        return calendar_layer_from_dict(data, where, people)
    name = _str(data.get("name"), f"{where}.name")
    for key in ("start", "shift", "participants"):
        if key not in data:
            raise _fail(where, f"a rotation layer needs {key!r}")
    start = to_wall(parse_time(data["start"], f"{where}.start", tz), tz)
    participants = tuple(
        _str(p, f"{where}.participants[{i}]")
        for i, p in enumerate(_list(data["participants"], f"{where}.participants"))
    )
    if not participants:
        raise _fail(f"{where}.participants", "a rotation needs at least one participant")
    restrictions = tuple(
        parse_window(w, f"{where}.restrictions[{i}]")
        for i, w in enumerate(_list(data.get("restrictions"), f"{where}.restrictions"))
    )
    bounds = {
        key: parse_time(data[key], f"{where}.{key}", tz) if data.get(key) else None
        for key in ("effective_from", "effective_until")
    }
    return RotationLayer(
        name,
        Rotation(start, parse_shift(data["shift"], f"{where}.shift"), participants),
        restrictions,
        bounds["effective_from"],
        bounds["effective_until"],
    )


def parse_override(value: Any, where: str, tz: ZoneInfo) -> Override:
    data = _mapping(value, where)
    kind = data.get("kind")
    if kind not in KINDS:
        raise _fail(f"{where}.kind", f"{kind!r} is not one of leave, swap, cover")
    for key in ("id", "person", "start", "end"):
        if not data.get(key):
            raise _fail(where, f"an override needs {key!r}")
    try:
        return Override(
            _str(data["id"], f"{where}.id"),
            kind,
            _str(data["person"], f"{where}.person"),
            parse_time(data["start"], f"{where}.start", tz),
            parse_time(data["end"], f"{where}.end", tz),
            _str(data["other"], f"{where}.other") if data.get("other") else None,
            str(data.get("note") or ""),
        )
    except ValueError as exc:
        if isinstance(exc, OnCallConfigError):
            raise
        raise _fail(where, str(exc)) from None


def parse_schedule(name: str, value: Any, where: str, people: Mapping[str, Person]) -> Schedule:
    data = _mapping(value, where)
    tz = parse_zone(data.get("time_zone"), f"{where}.time_zone")
    layers = tuple(
        parse_layer(v, f"{where}.layers[{i}]", tz, people)
        for i, v in enumerate(_list(data.get("layers"), f"{where}.layers"))
    )
    if not layers:
        raise _fail(f"{where}.layers", "a schedule needs at least one layer")
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise _fail(f"{where}.layers", "layer names must be unique")
    overrides = tuple(
        parse_override(v, f"{where}.overrides[{i}]", tz)
        for i, v in enumerate(_list(data.get("overrides"), f"{where}.overrides"))
    )
    return Schedule(name, tz.key, layers, overrides)


def parse_directory(
    data: Any, source: str = "<on-call>", topology_owners: Mapping[str, str] | None = None
) -> Directory:
    """A checked :class:`Directory` from plain data; ``topology_owners`` (service -> team from
    a topology file) take precedence over the file's ``services``."""
    root = _mapping(data, source)
    unknown = set(root) - set(SECTIONS)
    if unknown:
        raise _fail(source, f"unknown section(s) {sorted(unknown)}: expected {', '.join(SECTIONS)}")
    people: dict[str, Person] = {}
    for pid, value in _mapping(root.get("people"), f"{source}: people").items():
        where = f"{source}: people.{pid}"
        pdata = _mapping(value, where)
        handles = {
            str(k): _str(v, f"{where}.handles.{k}")
            for k, v in _mapping(pdata.get("handles"), f"{where}.handles").items()
        }
        people[str(pid)] = Person(str(pid), str(pdata.get("name") or ""), handles)
    teams: dict[str, Team] = {}
    for tid, value in _mapping(root.get("teams"), f"{source}: teams").items():
        where = f"{source}: teams.{tid}"
        tdata = _mapping(value, where)
        teams[str(tid)] = Team(
            str(tid),
            str(tdata.get("name") or ""),
            tuple(_str(m, f"{where}.members") for m in _list(tdata.get("members"), where)),
            tuple(_str(s, f"{where}.schedules") for s in _list(tdata.get("schedules"), where)),
            _str(tdata["escalation_policy"], f"{where}.escalation_policy")
            if tdata.get("escalation_policy")
            else None,
        )
    schedules = {
        str(name): parse_schedule(str(name), value, f"{source}: schedules.{name}", people)
        for name, value in _mapping(root.get("schedules"), f"{source}: schedules").items()
    }
    owners = {
        str(svc): _str(team, f"{source}: services.{svc}")
        for svc, team in _mapping(root.get("services"), f"{source}: services").items()
    }
    owners.update(topology_owners or {})
    base = Directory(people, teams, schedules, owners)
    try:
        policies = {
            str(name): parse_policy(str(name), value, base)
            for name, value in _mapping(
                root.get("escalation_policies"), f"{source}: escalation_policies"
            ).items()
        }
        return Directory(people, teams, schedules, owners, policies).check()
    except ValueError as exc:  # DirectoryError, EscalationError
        raise _fail(source, str(exc)) from None


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def dump_override(o: Override) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": o.id,
        "kind": o.kind,
        "person": o.person,
        "start": _iso(o.start),
        "end": _iso(o.end),
    }
    if o.other:
        out["other"] = o.other
    if o.note:
        out["note"] = o.note
    return out


def dump_layer(layer: Layer) -> dict[str, Any]:
    if not isinstance(layer, RotationLayer):
        from pipeline.domain.oncall.ical import CalendarLayer

        assert isinstance(layer, CalendarLayer)
        return layer.to_dict()
    r = layer.rotation
    out: dict[str, Any] = {
        "name": layer.name,
        "start": r.start.isoformat(),
        "shift": str(r.length),
        "participants": list(r.participants),
    }
    if layer.restrictions:
        out["restrictions"] = [_dump_window(w) for w in layer.restrictions]
    for key in ("effective_from", "effective_until"):
        value = getattr(layer, key)
        if value is not None:
            out[key] = _iso(value)
    return out


def _dump_window(w: Window) -> dict[str, Any]:
    out: dict[str, Any] = {"days": [WEEKDAYS[d] for d in sorted(w.days)]}
    out["start"] = w.start.strftime("%H:%M:%S" if w.start.second else "%H:%M")
    if w.length <= timedelta(days=1) and w.length.total_seconds() % 60 == 0:
        out["end"] = w.end.strftime("%H:%M")
    else:
        out["hours"] = w.length.total_seconds() / 3600
    return out


def dump_schedule(s: Schedule) -> dict[str, Any]:
    out: dict[str, Any] = {"time_zone": s.time_zone, "layers": [dump_layer(x) for x in s.layers]}
    if s.overrides:
        out["overrides"] = [dump_override(o) for o in s.overrides]
    return out


def dump_person(p: Person) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name} if p.name else {}
    if p.handles:
        out["handles"] = dict(p.handles)
    return out


def dump_team(t: Team) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name} if t.name else {}
    out["members"] = list(t.members)
    out["schedules"] = list(t.schedules)
    if t.escalation_policy:
        out["escalation_policy"] = t.escalation_policy
    return out


def dump_directory(d: Directory) -> dict[str, Any]:
    """The plain-data form :func:`parse_directory` reads back."""
    return {
        "people": {pid: dump_person(p) for pid, p in d.people.items()},
        "teams": {tid: dump_team(t) for tid, t in d.teams.items()},
        "services": dict(d.owners),
        "schedules": {name: dump_schedule(s) for name, s in d.schedules.items()},
        "escalation_policies": {name: dump_policy(p) for name, p in d.policies.items()},
    }
