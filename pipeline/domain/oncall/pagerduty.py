"""PagerDuty schedule import: the REST API's schedule object (``GET /schedules/{id}``) and
its overrides (``GET /schedules/{id}/overrides``).

- ``schedule_layers`` come highest priority first (the API lists them in the reverse of
  their creation order, the top layer first), as our layers do.
- A layer rotates ``users`` in order with turns of ``rotation_turn_length_seconds`` from
  ``rotation_virtual_start``, and is in effect from ``start`` until ``end`` (null: forever).
  Turns that are whole weeks, days or hours become wall-clock shifts in the schedule's zone
  (hand-offs keep their local time across DST changes, as PagerDuty documents for
  daily and weekly rotations).
- ``daily_restriction`` (``start_time_of_day`` + ``duration_seconds``, every day) and
  ``weekly_restriction`` (also ``start_day_of_week``, 1 = Monday) become windows.
- Overrides (``start``, ``end``, ``user``) become ``cover`` overrides.

Users are matched to people by a ``pagerduty`` handle equal to the user id, an ``email``
handle, their id or their name; unknown users become new people (id from the name, the PagerDuty id
as handle), returned for the caller to add.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.domain.oncall.directory import Person
from pipeline.domain.oncall.layers import RotationLayer
from pipeline.domain.oncall.overrides import Override
from pipeline.domain.oncall.restrictions import Window
from pipeline.domain.oncall.rotation import Rotation, ShiftLength
from pipeline.domain.oncall.schedule import Schedule
from pipeline.domain.oncall.wallclock import to_wall


class PagerDutyImportError(ValueError):
    """The PagerDuty JSON is not a schedule we can read; one line naming the field."""


def _get(data: Any, key: str, where: str) -> Any:
    if not isinstance(data, Mapping) or key not in data or data[key] is None:
        raise PagerDutyImportError(f"{where}: missing {key!r}")
    return data[key]


def _time(value: Any, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PagerDutyImportError(f"{where}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise PagerDutyImportError(f"{where}: {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def _length(seconds: Any, where: str) -> ShiftLength:
    if not isinstance(seconds, int) or seconds <= 0:
        raise PagerDutyImportError(f"{where}: rotation_turn_length_seconds must be > 0")
    for unit, size in (("weeks", 604800), ("days", 86400), ("hours", 3600)):
        if seconds % size == 0:
            return ShiftLength(seconds // size, unit)  # type: ignore[arg-type]
    raise PagerDutyImportError(
        f"{where}: turns of {seconds} s are not whole hours; stormwatch rotates by hours, "
        "days or weeks"
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class _People:
    def __init__(self, people: Mapping[str, Person]) -> None:
        self.people = people
        self.new: dict[str, Person] = {}
        self.by_key: dict[str, str] = {}
        for pid, p in people.items():
            self.by_key[pid] = pid
            if p.name:
                self.by_key[p.name.lower()] = pid
            for kind in ("pagerduty", "email"):
                if p.handles.get(kind):
                    self.by_key[p.handles[kind].lower()] = pid

    def resolve(self, ref: Any, where: str) -> str:
        user = ref.get("user", ref) if isinstance(ref, Mapping) else ref
        uid = str(_get(user, "id", where))
        name = str(user.get("summary") or user.get("name") or uid)
        for key in (uid.lower(), str(user.get("email") or "").lower(), uid, name.lower()):
            if key and key in self.by_key:
                return self.by_key[key]
        pid = _slug(name) or uid.lower()
        while pid in self.people or (pid in self.new and self.new[pid].handles["pagerduty"] != uid):
            pid += "-pd"
        handles = {"pagerduty": uid}
        if user.get("email"):
            handles["email"] = str(user["email"])
        self.new[pid] = Person(pid, name, handles)
        self.by_key[uid.lower()] = pid
        return pid


def _restriction(data: Any, where: str) -> Window:
    kind = _get(data, "type", where)
    start = time.fromisoformat(str(_get(data, "start_time_of_day", where)))
    length = timedelta(seconds=int(_get(data, "duration_seconds", where)))
    if kind == "daily_restriction":
        return Window(frozenset(range(7)), start, length)
    if kind == "weekly_restriction":
        day = int(_get(data, "start_day_of_week", where))
        if not 1 <= day <= 7:
            raise PagerDutyImportError(f"{where}: start_day_of_week {day} is not 1..7")
        return Window(frozenset({day - 1}), start, length)
    raise PagerDutyImportError(f"{where}: unknown restriction type {kind!r}")


def _windows(windows: Iterable[Window]) -> tuple[Window, ...]:
    """Weekly restrictions with the same start and length as one window over their days."""
    days: dict[tuple[time, timedelta], set[int]] = {}
    for w in windows:
        days.setdefault((w.start, w.length), set()).update(w.days)
    return tuple(Window(frozenset(d), start, length) for (start, length), d in days.items())


def import_pagerduty(
    document: Any, people: Mapping[str, Person], overrides: Any = None, name: str | None = None
) -> tuple[Schedule, dict[str, Person]]:
    """A schedule from PagerDuty JSON (``{"schedule": {...}}`` or the bare object, with its
    overrides inline under ``"overrides"`` or given separately), and the new people."""
    raw = document.get("schedule", document) if isinstance(document, Mapping) else document
    tz_name = str(_get(raw, "time_zone", "schedule"))
    try:
        tz = ZoneInfo(tz_name)
    except Exception:
        raise PagerDutyImportError(f"schedule: unknown time_zone {tz_name!r}") from None
    who = _People(people)
    layers = []
    for i, layer in enumerate(_get(raw, "schedule_layers", "schedule")):
        where = f"schedule_layers[{i}]"
        users = [who.resolve(u, f"{where}.users") for u in _get(layer, "users", where)]
        if not users:
            raise PagerDutyImportError(f"{where}: a layer needs users")
        anchor = _time(_get(layer, "rotation_virtual_start", where), where)
        try:
            restrictions = _windows(
                _restriction(r, f"{where}.restrictions[{j}]")
                for j, r in enumerate(layer.get("restrictions") or [])
            )
        except ValueError as exc:
            raise PagerDutyImportError(str(exc)) from None
        layers.append(
            RotationLayer(
                str(layer.get("name") or layer.get("id") or f"layer-{i + 1}"),
                Rotation(
                    to_wall(anchor, tz),
                    _length(layer.get("rotation_turn_length_seconds"), where),
                    tuple(users),
                ),
                restrictions,
                _time(_get(layer, "start", where), where),
                _time(layer["end"], where) if layer.get("end") else None,
            )
        )
    if not layers:
        raise PagerDutyImportError("schedule: no schedule_layers")
    if overrides is None and isinstance(document, Mapping):
        overrides = document.get("overrides") or raw.get("overrides")
    items = overrides.get("overrides", []) if isinstance(overrides, Mapping) else overrides or []
    covers = []
    for j, o in enumerate(items):
        where = f"overrides[{j}]"
        covers.append(
            Override(
                str(o.get("id") or f"pd-override-{j + 1}"),
                "cover",
                who.resolve(_get(o, "user", where), f"{where}.user"),
                _time(_get(o, "start", where), where),
                _time(_get(o, "end", where), where),
            )
        )
    title = name or _slug(str(raw.get("name") or raw.get("id") or "pagerduty")) or "pagerduty"
    return Schedule(title, tz.key, tuple(layers), tuple(covers)), who.new
