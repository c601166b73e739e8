"""People, teams, service ownership and schedules: the on-call directory.

A service's owner comes from the topology's ``team`` field when it has one, else from the
ownership map (``services:`` in the on-call file, or changed at run time). A team lists its
members and its schedules, the first being its primary on-call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from pipeline.domain.oncall.schedule import OnCall, Schedule, Segment, timeline, who

if TYPE_CHECKING:
    from pipeline.domain.oncall.escalation import Policy


class DirectoryError(ValueError):
    """The directory is inconsistent (an unknown person, team or schedule); one line."""


@dataclass(frozen=True, slots=True)
class Person:
    """A responder; ``handles`` are contact handles by kind (email, slack, phone, ...)."""

    id: str
    name: str = ""
    handles: Mapping[str, str] = field(default_factory=dict)

    @property
    def display(self) -> str:
        return self.name or self.id


@dataclass(frozen=True, slots=True)
class Team:
    """A team: its members, its schedules (primary first) and its escalation policy."""

    id: str
    name: str = ""
    members: tuple[str, ...] = ()
    schedules: tuple[str, ...] = ()
    escalation_policy: str | None = None


@dataclass(frozen=True, slots=True)
class Directory:
    """Everything on-call answers come from; :meth:`check` verifies the references."""

    people: Mapping[str, Person] = field(default_factory=dict)
    teams: Mapping[str, Team] = field(default_factory=dict)
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    owners: Mapping[str, str] = field(default_factory=dict)
    policies: Mapping[str, Policy] = field(default_factory=dict)

    def check(self) -> Directory:
        """Raise :class:`DirectoryError` naming the first dangling reference."""
        for t in self.teams.values():
            for member in t.members:
                self._person(member, f"team {t.id!r} member")
            for name in t.schedules:
                if name not in self.schedules:
                    raise DirectoryError(
                        f"team {t.id!r} names schedule {name!r}, which is not defined"
                    )
            if t.escalation_policy is not None and t.escalation_policy not in self.policies:
                raise DirectoryError(
                    f"team {t.id!r} names escalation policy {t.escalation_policy!r}, which is "
                    "not defined"
                )
        for schedule in self.schedules.values():
            for person in sorted(schedule.people()):
                self._person(person, f"schedule {schedule.name!r}")
        for service, owner in self.owners.items():
            if owner not in self.teams:
                raise DirectoryError(f"service {service!r} is owned by unknown team {owner!r}")
        return self

    def _person(self, person: str, where: str) -> None:
        if person not in self.people:
            raise DirectoryError(f"{where}: {person!r} is not in people")

    def team(self, team_id: str) -> Team:
        team = self.teams.get(team_id)
        if team is None:
            known = ", ".join(sorted(self.teams)) or "none"
            raise DirectoryError(f"no team {team_id!r} (teams: {known})")
        return team

    def schedule(self, name: str) -> Schedule:
        schedule = self.schedules.get(name)
        if schedule is None:
            known = ", ".join(sorted(self.schedules)) or "none"
            raise DirectoryError(f"no schedule {name!r} (schedules: {known})")
        return schedule

    def owner(self, service: str) -> str | None:
        """The team owning ``service``, or None."""
        return self.owners.get(service)

    def who(self, team_id: str, at: datetime) -> list[OnCall]:
        """Who is on call for a team at ``at``: one answer per schedule, primary first."""
        return [who(self.schedule(name), at) for name in self.team(team_id).schedules]

    def shifts_of(self, person: str, start: datetime, end: datetime) -> list[Segment]:
        """Every segment of every schedule between ``start`` and ``end`` where ``person`` is
        on call, in time order."""
        self._person(person, "person")
        out = [
            Segment(s.start, s.end, s.person, s.source, s.layer, s.override, f"{name}: {s.reason}")
            for name, schedule in self.schedules.items()
            for s in timeline(schedule, start, end)
            if s.person == person
        ]
        return sorted(out, key=lambda s: (s.start, s.reason))

    def with_owner(self, service: str, team: str | None) -> Directory:
        """A copy with ``service`` owned by ``team`` (None: no owner)."""
        owners = dict(self.owners)
        if team is None:
            owners.pop(service, None)
        else:
            self.team(team)
            owners[service] = team
        return Directory(self.people, self.teams, self.schedules, owners, self.policies)
