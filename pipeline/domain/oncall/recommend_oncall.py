"""Who is on call at an instant, across a directory, fast enough to ask per incident.

:class:`OnCallView` wraps one version of a :class:`Directory` and remembers each schedule's
last answer: ``who()`` is piecewise constant, so an answer holds from its ``since`` (or the
instant asked) until its ``until``, and incidents arriving in time order mostly hit the
cache. Build a new view when the directory changes (its version moves).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.domain.oncall.directory import Directory
from pipeline.domain.oncall.schedule import OnCall, who
from pipeline.domain.oncall.wallclock import utc


@dataclass(frozen=True, slots=True)
class Duty:
    """``person`` is on call on ``schedule`` for ``team`` (``rank`` 0: the team's primary)."""

    team: str
    schedule: str
    rank: int
    answer: OnCall

    def describe(self) -> str:
        until = self.answer.until
        end = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
        role = "primary" if self.rank == 0 else "secondary"
        return f"on call ({role}) for {self.team}{end}"


class OnCallView:
    """On-call answers for one directory version, cached per schedule."""

    def __init__(self, directory: Directory, version: int | str = 0) -> None:
        self.directory = directory
        self.version = version
        self._cache: dict[str, OnCall] = {}
        self._teams_of_schedule: dict[str, list[tuple[str, int]]] = {}
        for team in directory.teams.values():
            for rank, name in enumerate(team.schedules):
                self._teams_of_schedule.setdefault(name, []).append((team.id, rank))

    def answer(self, schedule: str, at: datetime) -> OnCall:
        """``who(schedule, at)``, from the cache while the cached answer still holds."""
        cached = self._cache.get(schedule)
        if cached is not None:
            start = cached.since if cached.since is not None else cached.at
            if start <= at and (cached.until is None or at < cached.until):
                return cached
        fresh = who(self.directory.schedule(schedule), at)
        self._cache[schedule] = fresh
        return fresh

    def duties(self, at: datetime) -> dict[str, list[Duty]]:
        """Everyone on call at ``at`` with their duties (primary duties first)."""
        at = utc(at)
        out: dict[str, list[Duty]] = {}
        for name, teams in self._teams_of_schedule.items():
            answer = self.answer(name, at)
            if answer.person is None:
                continue
            for team, rank in teams:
                out.setdefault(answer.person, []).append(Duty(team, name, rank, answer))
        for duties in out.values():
            duties.sort(key=lambda d: d.rank)
        return out

    def team_of(self, service: str) -> str | None:
        return self.directory.owner(service)
