"""The on-call directory in Redis: people, teams, ownership, schedules and overrides,
changeable at run time (CLI, the worker's HTTP endpoints) without a restart.

Keys (under the store prefix, default ``sw:``): ``oncall:people``, ``oncall:teams``,
``oncall:schedules``, ``oncall:escalation_policies`` hashes id -> JSON in the on-call
file's form (:mod:`pipeline.domain.oncall.config`; schedules without their overrides)
| ``oncall:services`` hash service -> team
| ``oncall:overrides:<schedule>`` hash override id -> JSON with ``seq``, the order they were
added (later ones win) | ``oncall:seq`` the counter behind it | ``oncall:version`` bumped by
every change, so readers can cache the directory until it moves.

Every change is checked against the whole directory before it is written, so what is
stored always parses; a refused change raises ``ValueError`` with a one-line reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis

from pipeline.domain.oncall import Directory, parse_directory
from pipeline.domain.oncall.config import (
    OnCallConfigError,
    dump_directory,
    dump_override,
    dump_person,
    dump_schedule,
    parse_override,
)
from pipeline.domain.oncall.directory import Person
from pipeline.domain.oncall.schedule import Schedule

SECTIONS = ("people", "teams", "schedules", "services", "escalation_policies")


class OnCallStore:
    def __init__(self, client: redis.Redis, prefix: str = "sw:") -> None:
        self.r = client
        self.base = f"{prefix}oncall:"

    def _key(self, name: str) -> str:
        return self.base + name

    def _override_key(self, schedule: str) -> str:
        return self._key(f"overrides:{schedule}")

    def version(self) -> int:
        """A number that changes whenever the directory does (0: nothing stored)."""
        return int(self.r.get(self._key("version")) or 0)

    def raw(self) -> dict[str, Any]:
        """The stored directory as plain data, overrides inside their schedules."""
        pipe = self.r.pipeline(transaction=True)
        for section in SECTIONS:
            pipe.hgetall(self._key(section))
        results = pipe.execute()
        data: dict[str, Any] = {
            section: {
                _text(k): _text(v) if section == "services" else _loads(v)
                for k, v in result.items()
            }
            for section, result in zip(SECTIONS, results, strict=True)
        }
        names = list(data["schedules"])
        pipe = self.r.pipeline(transaction=True)
        for name in names:
            pipe.hgetall(self._override_key(name))
        for name, overrides in zip(names, pipe.execute(), strict=True):
            items = sorted((_loads(v) for v in overrides.values()), key=lambda o: o.pop("seq", 0))
            if items:
                data["schedules"][name]["overrides"] = items
        return data

    def directory(self) -> Directory:
        """The stored directory, parsed and checked."""
        return parse_directory(self.raw(), "Redis on-call directory")

    def replace(self, directory: Directory) -> None:
        """Store ``directory`` in place of whatever was stored (overrides included)."""
        data = dump_directory(directory)
        old = [k for k in self.r.scan_iter(match=self._key("overrides:*"))]
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(*(self._key(s) for s in SECTIONS), *old)
        seq = 0
        for section in SECTIONS:
            for key, value in data[section].items():
                if section == "schedules":
                    for override in value.pop("overrides", []):
                        seq += 1
                        pipe.hset(
                            self._override_key(key),
                            override["id"],
                            _dumps({**override, "seq": seq}),
                        )
                pipe.hset(
                    self._key(section), key, value if section == "services" else _dumps(value)
                )
        pipe.set(self._key("seq"), seq)
        pipe.incr(self._key("version"))
        pipe.execute()

    def put_schedule(self, schedule: Schedule, people: Mapping[str, Person] | None = None) -> None:
        """Add or replace one schedule (its overrides too), adding ``people`` first."""
        current = self.raw()
        for pid, person in (people or {}).items():
            current["people"][pid] = dump_person(person)
        current["schedules"][schedule.name] = dump_schedule(schedule)
        self.replace(parse_directory(current, "the changed directory"))

    def set_owner(self, service: str, team: str | None) -> None:
        """``service`` is owned by ``team`` from now on (None: by nobody)."""
        if team is None:
            self.r.hdel(self._key("services"), service)
        else:
            directory = self.directory()
            directory.team(team)  # raises DirectoryError naming the known teams
            self.r.hset(self._key("services"), service, team)
        self.r.incr(self._key("version"))

    def add_override(self, schedule: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Check an override (in the on-call file's form) against the directory and store
        it on ``schedule``; returns it as stored (times in UTC)."""
        directory = self.directory()
        sched = directory.schedule(schedule)
        override = parse_override(data, f"override on {schedule}", sched.tz)
        for person in (override.person, override.other):
            if person is not None and person not in directory.people:
                raise OnCallConfigError(f"override {override.id!r}: {person!r} is not in people")
        stored = dump_override(override)
        seq = self.r.incr(self._key("seq"))
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._override_key(schedule), override.id, _dumps({**stored, "seq": seq}))
        pipe.incr(self._key("version"))
        pipe.execute()
        return stored

    def remove_override(self, schedule: str, override_id: str) -> bool:
        """Remove an override; False if there was none with that id."""
        removed = bool(self.r.hdel(self._override_key(schedule), override_id))
        if removed:
            self.r.incr(self._key("version"))
        return removed

    def overrides(self, schedule: str) -> list[dict[str, Any]]:
        """The overrides stored on ``schedule``, in the order they apply."""
        self.directory().schedule(schedule)
        items = [_loads(v) for v in self.r.hgetall(self._override_key(schedule)).values()]
        return sorted(items, key=lambda o: o.pop("seq", 0))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _loads(value: bytes | str) -> Any:
    return json.loads(value)
