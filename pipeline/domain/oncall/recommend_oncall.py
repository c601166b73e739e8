"""Who is on call at an instant, across a directory, fast enough to ask per incident.

:class:`OnCallView` wraps one version of a :class:`Directory`. :meth:`OnCallView.prepare`
computes each schedule's timeline over a span once (when the directory version is loaded:
changes of the schedules are the costly part), after which an answer is a binary search.
Outside the prepared span it asks ``who()`` and remembers the answer, which holds from its
``since`` until its ``until`` (``who()`` is piecewise constant), so incidents arriving in
time order mostly hit that cache. Build a new view when the directory changes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pipeline.domain.oncall.directory import Directory
from pipeline.domain.oncall.schedule import timeline, who
from pipeline.domain.oncall.wallclock import utc


@dataclass(frozen=True, slots=True)
class Hold:
    """``person`` (None: nobody) is on call from ``since`` until ``until`` (None: not known
    to end), ``reason`` as ``who()`` says it."""

    person: str | None
    since: datetime | None
    until: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class Duty:
    """``hold.person`` is on call on ``schedule`` for ``team`` (``rank`` 0: the team's
    primary)."""

    team: str
    schedule: str
    rank: int
    hold: Hold

    def describe(self) -> str:
        until = self.hold.until
        end = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
        role = "primary" if self.rank == 0 else "secondary"
        return f"on call ({role}) for {self.team}{end}"


@dataclass(frozen=True, slots=True)
class _Timeline:
    starts: list[datetime]
    holds: list[Hold | None]  # None: the person's hold reaches past the span (ask who())
    end: datetime


class OnCallView:
    """On-call answers for one directory version (see the module docstring)."""

    def __init__(self, directory: Directory, version: int | str = 0) -> None:
        self.directory = directory
        self.version = version
        self._cache: dict[str, Hold] = {}
        self._timelines: dict[str, _Timeline] = {}
        self._teams_of_schedule: dict[str, list[tuple[str, int]]] = {}
        for team in directory.teams.values():
            for rank, name in enumerate(team.schedules):
                self._teams_of_schedule.setdefault(name, []).append((team.id, rank))
        self._schedules_of: dict[str, set[str]] = {}
        for name, schedule in directory.schedules.items():
            for person in schedule.people():
                self._schedules_of.setdefault(person, set()).add(name)

    def prepare(self, start: datetime, end: datetime) -> None:
        """Compute every schedule's timeline over ``[start, end)`` (replacing earlier ones)."""
        for name, schedule in self.directory.schedules.items():
            segments = timeline(schedule, start, end)
            holds: list[Hold | None] = [None] * len(segments)
            run_end: datetime | None = None  # where the current person's run ends
            for i in range(len(segments) - 1, -1, -1):
                seg = segments[i]
                if i + 1 < len(segments) and segments[i + 1].person == seg.person:
                    until = run_end
                else:
                    until = seg.end if i + 1 < len(segments) else None
                run_end = until
                if until is not None:
                    holds[i] = Hold(seg.person, seg.start, until, seg.reason)
            starts = [seg.start for seg in segments]
            self._timelines[name] = _Timeline(starts, holds, utc(end))

    def answer(self, schedule: str, at: datetime) -> Hold:
        """Who is on call on ``schedule`` at ``at`` (the timeline, else ``who()`` cached)."""
        tl = self._timelines.get(schedule)
        if tl is not None and tl.starts and tl.starts[0] <= at < tl.end:
            hold = tl.holds[bisect_right(tl.starts, at) - 1]
            if hold is not None:
                return hold
        cached = self._cache.get(schedule)
        if cached is not None and _covers(cached, at):
            return cached
        fresh = who(self.directory.schedule(schedule), at)
        hold = Hold(fresh.person, fresh.since or fresh.at, fresh.until, fresh.reason)
        self._cache[schedule] = hold
        return hold

    def schedules_of(self, person: str) -> set[str]:
        """The schedules that can put ``person`` on call."""
        return self._schedules_of.get(person, set())

    def schedules_of_team(self, team: str) -> tuple[str, ...]:
        t = self.directory.teams.get(team)
        return t.schedules if t is not None else ()

    def duties(self, at: datetime, schedules: Iterable[str] | None = None) -> dict[str, list[Duty]]:
        """Who is on call at ``at`` on ``schedules`` (default: every team's), with their
        duties, primary duties first."""
        at = utc(at)
        out: dict[str, list[Duty]] = {}
        names = self._teams_of_schedule if schedules is None else sorted(set(schedules))
        for name in names:
            teams = self._teams_of_schedule.get(name)
            if not teams:
                continue
            hold = self.answer(name, at)
            if hold.person is None:
                continue
            for team, rank in teams:
                out.setdefault(hold.person, []).append(Duty(team, name, rank, hold))
        for duties in out.values():
            duties.sort(key=lambda d: d.rank)
        return out

    def team_of(self, service: str) -> str | None:
        return self.directory.owner(service)


def _covers(hold: Hold, at: datetime) -> bool:
    """Does ``hold`` still answer at ``at``?"""
    since_ok = hold.since is not None and hold.since <= at
    return since_ok and (hold.until is None or at < hold.until)
