"""A seeded simulated company for ``make bench-responders``: teams owning the services of a
real topology, people in several time zones with hidden skills, and the on-call file.

- **Teams** own connected chunks of the service graph (3 to 5 services each, as teams own
  neighbouring services), 3 to ``max_team`` people each.
- **Sites**: a team sits in one time zone (24/7 weekly rotation) or two about 12 hours apart
  (follow the sun: the first site's people on call 08:00-20:00 local, daily, the second
  site's people the rest of the time), with a fallback layer for leaves. Every team also has
  a secondary schedule (weekly, the next person).
- **Overrides**: everyone takes one or two leaves of 5-14 days a year; people swap a day of
  on call with a teammate a few times a month.
- **Hidden skills** (the recommender never sees them): each person masters one or two of
  their team's services and has a weak grasp of the others; one person in five also knows a
  neighbouring team's service well; each person is stronger at some fault kinds than others.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import networkx as nx

from pipeline.domain.oncall import Directory, parse_directory
from pipeline.domain.topology import Topology

KINDS = ("latency", "errors", "saturation", "crash", "config")
#: follow-the-sun pairs (first site's day is roughly the second site's night) and single sites
SITE_PAIRS = (
    ("Europe/Berlin", "America/Los_Angeles"),
    ("America/New_York", "Asia/Kolkata"),
    ("Europe/London", "Australia/Sydney"),
)
SINGLE_SITES = ("Europe/Berlin", "America/New_York", "Asia/Singapore", "America/Chicago")


@dataclass
class Company:
    """The simulated company: its topology, directory and the hidden truth."""

    topology: Topology
    directory: Directory
    team_of: dict[str, str]
    members: dict[str, list[str]]
    #: hidden: person -> service -> mastery in [0, 1]
    service_skill: dict[str, dict[str, float]]
    #: hidden: person -> fault kind -> multiplier in [0, 1]
    kind_skill: dict[str, dict[str, float]]
    #: hidden: per service, how often it fails (relative)
    failure_rate: dict[str, float]

    def skill(self, person: str, service: str, kind: str) -> float:
        return self.service_skill[person].get(service, 0.02) * self.kind_skill[person][kind]

    def neighbours(self, service: str) -> list[str]:
        return sorted(self.topology.callers(service) | self.topology.dependencies(service))


def _chunks(graph: nx.DiGraph, rng: random.Random) -> list[list[str]]:
    """Connected chunks of 3-5 services (the last ones may be smaller)."""
    undirected = graph.to_undirected()
    left = set(graph.nodes)
    out: list[list[str]] = []
    while left:
        seed = rng.choice(sorted(left))
        size = rng.randint(3, 5)
        chunk = [seed]
        frontier = [seed]
        while frontier and len(chunk) < size:
            node = frontier.pop(0)
            for n in sorted(undirected.neighbors(node)):
                if n in left and n not in chunk and len(chunk) < size:
                    chunk.append(n)
                    frontier.append(n)
        left -= set(chunk)
        out.append(chunk)
    return out


def build(topology_path: Path, seed: int, max_team: int, start: datetime, days: int) -> Company:
    """The company for one run (every random choice from ``seed``)."""
    rng = random.Random(seed)
    topology = Topology.load(topology_path)
    chunks = _chunks(topology.graph, rng)
    team_of: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    people: dict[str, Any] = {}
    service_skill: dict[str, dict[str, float]] = {}
    kind_skill: dict[str, dict[str, float]] = {}
    schedules: dict[str, Any] = {}
    teams: dict[str, Any] = {}
    for i, chunk in enumerate(chunks):
        team = f"team{i}"
        size = rng.randint(3, max(3, max_team))
        names = [f"{team}-p{j}" for j in range(size)]
        members[team] = names
        for s in chunk:
            team_of[s] = team
        for name in names:
            people[name] = {"name": name}
            skills = {s: rng.uniform(0.05, 0.35) for s in chunk}
            for s in rng.sample(chunk, k=min(len(chunk), rng.randint(1, 2))):
                skills[s] = rng.uniform(0.7, 1.0)
            service_skill[name] = skills
            kinds = {k: rng.uniform(0.5, 1.0) for k in KINDS}
            strong, weak = rng.sample(KINDS, 2)
            kinds[strong], kinds[weak] = 1.0, rng.uniform(0.2, 0.4)
            kind_skill[name] = kinds
        schedules.update(_schedules(team, names, rng, start, days))
        teams[team] = {"members": names, "schedules": [f"{team}-primary", f"{team}-secondary"]}
    for skills in service_skill.values():
        if rng.random() < 0.2:
            mine = [s for s in skills if skills[s] >= 0.7]
            outside = sorted(
                {n for s in mine for n in topology.callers(s) | topology.dependencies(s)}
                - set(skills)
            )
            if outside:
                skills[rng.choice(outside)] = rng.uniform(0.7, 0.95)
    failure_rate = {s: rng.paretovariate(1.5) for s in topology.services}
    data = {"people": people, "teams": teams, "services": team_of, "schedules": schedules}
    directory = parse_directory(data, f"company-{seed}")
    return Company(topology, directory, team_of, members, service_skill, kind_skill, failure_rate)


def _schedules(
    team: str, names: list[str], rng: random.Random, start: datetime, days: int
) -> dict[str, Any]:
    order = names[:]
    rng.shuffle(order)
    follow_the_sun = len(order) >= 4 and rng.random() < 0.5
    if follow_the_sun:
        zone, other_zone = rng.choice(SITE_PAIRS)
        half = len(order) // 2
        layers = [
            {
                "name": "day-site",
                "start": f"{start:%Y-%m-%d}T08:00",
                "shift": "1d",
                "participants": order[:half],
                "restrictions": [{"start": "08:00", "end": "20:00"}],
            },
            {
                "name": f"night-site ({other_zone})",
                "start": f"{start:%Y-%m-%d}T20:00",
                "shift": "1w",
                "participants": order[half:],
            },
        ]
    else:
        zone = rng.choice(SINGLE_SITES)
        layers = [
            {
                "name": "weekly",
                "start": f"{start:%Y-%m-%d}T10:00",
                "shift": "1w",
                "participants": order,
            }
        ]
    layers.append(
        {
            "name": "fallback",
            "start": f"{start:%Y-%m-%d}T10:00",
            "shift": "1w",
            "participants": order[2:] + order[:2],
        }
    )
    secondary = [
        {
            "name": "weekly",
            "start": f"{start:%Y-%m-%d}T10:00",
            "shift": "1w",
            "participants": order[1:] + order[:1],
        }
    ]
    overrides: list[dict[str, Any]] = []
    for person in order:
        for n in range(rng.randint(1, 2)):
            begin = start + timedelta(days=rng.uniform(0, days - 14))
            length = timedelta(days=rng.randint(5, 14))
            overrides.append(
                {
                    "id": f"{person}-leave-{n}",
                    "kind": "leave",
                    "person": person,
                    "start": begin.isoformat(),
                    "end": (begin + length).isoformat(),
                }
            )
    for n in range(days // 10):
        a, b = rng.sample(order, 2)
        begin = start + timedelta(days=rng.randint(0, days - 1), hours=10)
        overrides.append(
            {
                "id": f"{team}-swap-{n}",
                "kind": "swap",
                "person": a,
                "other": b,
                "start": begin.isoformat(),
                "end": (begin + timedelta(days=1)).isoformat(),
            }
        )
    primary = {"time_zone": zone, "layers": layers, "overrides": overrides}
    return {
        f"{team}-primary": primary,
        f"{team}-secondary": {"time_zone": zone, "layers": secondary, "overrides": overrides},
    }
