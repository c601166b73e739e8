"""Escalation policies: who is paged, in which order, until someone acknowledges.

A policy is an ordered list of steps; each step pages its targets (a person, whoever is on
call on a schedule, or a team's on-call people) and waits ``delay`` for an
acknowledgement before the next step pages. After the last step the policy starts again from
the first, ``repeat`` more times; then it is exhausted. A round-robin step pages one target
at a time, the next one each time the step comes round. An acknowledgement stops escalation;
if the incident is still not resolved ``ack_timeout`` later it is re-triggered (from the
first step, as PagerDuty does); a resolution ends escalation for good.

The state machine is pure data: :func:`start`, :func:`tick`, :func:`acknowledge` and
:func:`resolve` take a state and a time and return the next state and the pages to send.
``EscalationState.next_at`` is the one timer a caller keeps (docs/oncall.md: in Redis).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from pipeline.domain.oncall.directory import Directory
from pipeline.domain.oncall.schedule import who

TargetKind = Literal["person", "schedule", "team"]
Status = Literal["escalating", "acknowledged", "resolved", "exhausted"]
DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class EscalationError(ValueError):
    """A malformed policy; one line naming the place."""


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    id: str


@dataclass(frozen=True, slots=True)
class Step:
    """Page ``targets`` (all, or one in turn if ``round_robin``), then wait ``delay``."""

    targets: tuple[Target, ...]
    delay: timedelta
    round_robin: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    steps: tuple[Step, ...]
    repeat: int = 0
    ack_timeout: timedelta | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            raise EscalationError(f"policy {self.name!r} needs at least one step")
        if self.repeat < 0:
            raise EscalationError(f"policy {self.name!r}: repeat must be >= 0")
        for i, step in enumerate(self.steps):
            if not step.targets:
                raise EscalationError(f"policy {self.name!r} step {i + 1} has no targets")
            if step.delay <= timedelta(0):
                raise EscalationError(f"policy {self.name!r} step {i + 1}: delay must be > 0")


@dataclass(frozen=True, slots=True)
class Page:
    """Step ``step`` (0-based) of round ``cycle`` (0 = the first pass) paged ``targets``."""

    incident: str
    step: int
    cycle: int
    targets: tuple[Target, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class EscalationState:
    """Where an incident's escalation stands; ``next_at`` is when :func:`tick` next has
    something to do (None: nothing until feedback arrives)."""

    incident: str
    policy: str
    status: Status
    step: int
    cycle: int
    next_at: datetime | None
    turns: tuple[int, ...]  # pages sent so far by each round-robin step
    triggered: int = 1  # how many times the escalation was (re-)triggered


def _page(policy: Policy, state: EscalationState, now: datetime) -> tuple[EscalationState, Page]:
    step = policy.steps[state.step]
    turns = list(state.turns)
    if step.round_robin:
        targets: tuple[Target, ...] = (step.targets[turns[state.step] % len(step.targets)],)
        turns[state.step] += 1
    else:
        targets = step.targets
    page = Page(state.incident, state.step, state.cycle, targets, now)
    return replace(state, next_at=now + step.delay, turns=tuple(turns)), page


def start(policy: Policy, incident: str, now: datetime) -> tuple[EscalationState, list[Page]]:
    """A new escalation: the first step pages now."""
    fresh = EscalationState(
        incident, policy.name, "escalating", 0, 0, None, tuple(0 for _ in policy.steps)
    )
    state, page = _page(policy, fresh, now)
    return state, [page]


def tick(
    policy: Policy, state: EscalationState, now: datetime
) -> tuple[EscalationState, list[Page]]:
    """Advance to ``now``: the next steps whose time has come page (several if the caller
    was late), an acknowledgement that timed out re-triggers from the first step."""
    pages: list[Page] = []
    while state.next_at is not None and state.next_at <= now:
        due = state.next_at
        if state.status == "acknowledged":
            state = replace(
                state, status="escalating", step=0, cycle=0, triggered=state.triggered + 1
            )
        elif state.status == "escalating":
            step, cycle = state.step + 1, state.cycle
            if step == len(policy.steps):
                step, cycle = 0, cycle + 1
            if cycle > policy.repeat:
                return replace(state, status="exhausted", next_at=None), pages
            state = replace(state, step=step, cycle=cycle)
        else:
            return replace(state, next_at=None), pages
        state, page = _page(policy, state, due)
        pages.append(page)
    return state, pages


def acknowledge(policy: Policy, state: EscalationState, now: datetime) -> EscalationState:
    """Stop escalating; with an ``ack_timeout`` the incident re-triggers after it."""
    if state.status == "resolved":
        return state
    until = now + policy.ack_timeout if policy.ack_timeout else None
    return replace(state, status="acknowledged", next_at=until)


def resolve(state: EscalationState) -> EscalationState:
    """The incident is resolved: escalation ends."""
    return replace(state, status="resolved", next_at=None)


@dataclass(frozen=True, slots=True)
class Paged:
    """A person paged for a target, and why (one line)."""

    person: str
    target: Target
    reason: str


def recipients(directory: Directory, targets: tuple[Target, ...], at: datetime) -> list[Paged]:
    """The people the targets mean at ``at`` (each once, in target order): a person; who is
    on call on a schedule; who is on call on each of a team's schedules. Nobody on call
    means nobody paged for that target."""
    out: list[Paged] = []
    seen: set[str] = set()

    def add(person: str | None, target: Target, reason: str) -> None:
        if person is not None and person not in seen:
            seen.add(person)
            out.append(Paged(person, target, reason))

    for target in targets:
        if target.kind == "person":
            add(target.id, target, "named by the escalation step")
        elif target.kind == "schedule":
            answer = who(directory.schedule(target.id), at)
            add(answer.person, target, f"on call on {target.id}: {answer.reason}")
        else:
            for answer in directory.who(target.id, at):
                add(answer.person, target, f"on call for team {target.id}: {answer.reason}")
    return out


def parse_duration(value: Any, where: str) -> timedelta:
    """``30s``, ``15m``, ``1h``, ``1d``, or a number of minutes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(minutes=value)
    match = DURATION_RE.match(str(value))
    if not match:
        raise EscalationError(f"{where}: {value!r} is not a duration like 15m, 1h or 30s")
    return timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])


def parse_policy(name: str, data: Any, directory: Directory | None = None) -> Policy:
    """A policy from plain data (checked against ``directory`` when given)::

    steps:
      - {delay: 15m, targets: [{schedule: payments-primary}]}
      - {delay: 10m, targets: [{person: alice}, {person: bob}], round_robin: true}
      - {delay: 30m, targets: [{team: payments}]}
    repeat: 2
    ack_timeout: 1h
    """
    where = f"escalation policy {name!r}"
    if not isinstance(data, Mapping):
        raise EscalationError(f"{where}: expected a mapping with 'steps'")
    steps = []
    for i, raw in enumerate(data.get("steps") or []):
        at = f"{where} steps[{i}]"
        if not isinstance(raw, Mapping):
            raise EscalationError(f"{at}: expected a mapping with 'delay' and 'targets'")
        targets = []
        for j, t in enumerate(raw.get("targets") or []):
            if not isinstance(t, Mapping) or len(t) != 1:
                raise EscalationError(f"{at}.targets[{j}]: expected one of person/schedule/team")
            kind, ident = next(iter(t.items()))
            if kind not in ("person", "schedule", "team"):
                raise EscalationError(f"{at}.targets[{j}]: {kind!r} is not person/schedule/team")
            targets.append(Target(kind, str(ident)))
            if directory is not None:
                known = {
                    "person": directory.people,
                    "schedule": directory.schedules,
                    "team": directory.teams,
                }[kind]
                if str(ident) not in known:
                    raise EscalationError(f"{at}.targets[{j}]: unknown {kind} {ident!r}")
        steps.append(
            Step(
                tuple(targets),
                parse_duration(raw.get("delay", "15m"), f"{at}.delay"),
                bool(raw.get("round_robin", False)),
            )
        )
    repeat = data.get("repeat", 0)
    if not isinstance(repeat, int) or isinstance(repeat, bool):
        raise EscalationError(f"{where}: repeat must be a whole number")
    timeout = data.get("ack_timeout")
    return Policy(
        name,
        tuple(steps),
        repeat,
        parse_duration(timeout, f"{where}.ack_timeout") if timeout else None,
    )


def _duration(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % UNIT_SECONDS[unit] == 0:
            return f"{seconds // UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def dump_policy(policy: Policy) -> dict[str, Any]:
    """The plain-data form :func:`parse_policy` reads back."""
    out: dict[str, Any] = {
        "steps": [
            {
                "delay": _duration(step.delay),
                "targets": [{t.kind: t.id} for t in step.targets],
                **({"round_robin": True} if step.round_robin else {}),
            }
            for step in policy.steps
        ],
        "repeat": policy.repeat,
    }
    if policy.ack_timeout is not None:
        out["ack_timeout"] = _duration(policy.ack_timeout)
    return out
