"""An incident's escalation as the worker stores and runs it (pure: no Kafka, Faust or Redis).

:class:`EscalationRecord` is the state of :mod:`.escalation`'s state machine plus what running
it exactly once needs: the team and the *owner* (the by-domain partition whose worker runs
it), a revision for compare-and-set writes, and an **outbox**: the pages a transition decided
that are not yet known to be published. As in GoAlert's engine, a step advance and the pages
it causes are one atomic write (its escalation state and outgoing messages change in one
transaction); publishing is a separate act that is repeated until it is confirmed and then
clears the outbox. So a worker that dies between the two leaves the pages in Redis for the
next owner, and one that dies before the write leaves the step undone, to be taken again.

Every ``plan_*`` function returns the record to write (revision bumped) or None when nothing
changes; the caller writes it only if the stored revision is still the one it read.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import msgspec

from pipeline.domain.oncall.directory import Directory
from pipeline.domain.oncall.escalation import (
    EscalationState,
    Page,
    Policy,
    Status,
    acknowledge,
    recipients,
    resolve,
    start,
    tick,
)
from pipeline.domain.schemas import (
    EscalationPage,
    EventType,
    Incident,
    IncidentEvent,
    IncidentStatus,
    PagedResponder,
)

#: seconds the worker that put pages in an outbox has to publish them before another may
LEASE_S = 10.0
#: statuses after which nothing happens until the incident reopens
ENDED: frozenset[str] = frozenset({"resolved", "exhausted"})


class EscalationRecord(msgspec.Struct, kw_only=True):
    """One incident's escalation in the store (times are epoch seconds)."""

    incident: str
    owner: str
    team: str
    policy: str
    status: str
    step: int
    cycle: int
    next_at: float | None
    turns: list[int]
    triggered: int = 1
    rev: int = 0
    outbox: list[EscalationPage] = []
    #: until when the worker that filled the outbox is publishing it (epoch seconds)
    lease: float = 0.0

    @property
    def due(self) -> float | None:
        """When the owner must next look at it: while pages wait in the outbox, when the
        lease of the worker publishing them runs out (it died, or failed to publish); else
        ``next_at`` (None: never, until feedback or a reopen)."""
        return self.lease if self.outbox else self.next_at


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def state_of(rec: EscalationRecord, policy: Policy) -> EscalationState:
    """The state machine's state; a policy edited since (fewer or more steps) is met where
    it can be: the step clamped to the last, round-robin turns padded or cut."""
    n = len(policy.steps)
    turns = (list(rec.turns) + [0] * n)[:n]
    return EscalationState(
        rec.incident,
        rec.policy,
        _status(rec.status),
        min(rec.step, n - 1),
        rec.cycle,
        _dt(rec.next_at) if rec.next_at is not None else None,
        tuple(turns),
        rec.triggered,
    )


def _status(value: str) -> Status:
    for s in ("escalating", "acknowledged", "resolved", "exhausted"):
        if value == s:
            return s
    raise ValueError(f"unknown escalation status {value!r}")


def _record(
    state: EscalationState,
    owner: str,
    team: str,
    rev: int,
    outbox: list[EscalationPage],
    lease: float = 0.0,
) -> EscalationRecord:
    return EscalationRecord(
        incident=state.incident,
        owner=owner,
        team=team,
        policy=state.policy,
        status=state.status,
        step=state.step,
        cycle=state.cycle,
        next_at=state.next_at.timestamp() if state.next_at is not None else None,
        turns=list(state.turns),
        triggered=state.triggered,
        rev=rev + 1,
        outbox=outbox,
        lease=lease,
    )


def team_policy(directory: Directory, incident: Incident) -> tuple[str, Policy] | str:
    """The team owning the incident's root cause and its escalation policy, or why there
    is none (one line)."""
    if not incident.root_cause:
        return "no root cause named yet"
    team = directory.owner(incident.root_cause)
    if team is None:
        return f"{incident.root_cause} has no owning team"
    name = directory.teams[team].escalation_policy if team in directory.teams else None
    policy = directory.policies.get(name) if name else None
    if policy is None:
        return f"team {team} has no escalation policy"
    return team, policy


def wants_escalation(ev: IncidentEvent) -> bool:
    """The event shows an incident that pages and is open (not acknowledged, resolved or
    merged away): its escalation starts if it has none yet."""
    inc = ev.incident
    return inc.page and inc.status is IncidentStatus.open and inc.merged_into is None


def ends_escalation(ev: IncidentEvent) -> bool:
    """The event closes the incident (resolved, or merged into another)."""
    inc = ev.incident
    return inc.status is IncidentStatus.resolved or inc.merged_into is not None


def page_view(
    directory: Directory, policy: Policy, team: str, state: EscalationState, page: Page
) -> EscalationPage:
    """The wire form of a page: who the step's targets meant when it was due, and why."""
    paged = []
    for p in recipients(directory, page.targets, page.at):
        person = directory.people.get(p.person)
        paged.append(
            PagedResponder(
                person=p.person,
                name=person.name if person is not None else "",
                target=f"{p.target.kind}:{p.target.id}",
                reason=p.reason,
                contacts=dict(person.handles) if person is not None else {},
            )
        )
    last = page.step == len(policy.steps) - 1 and page.cycle >= policy.repeat
    return EscalationPage(
        policy=policy.name,
        team=team,
        step=page.step + 1,
        steps=len(policy.steps),
        cycle=page.cycle + 1,
        triggered=state.triggered,
        due_at=page.at,
        next_at=None if last else state.next_at,
        paged=paged,
    )


def _pages(
    directory: Directory, policy: Policy, team: str, state: EscalationState, pages: list[Page]
) -> list[EscalationPage]:
    # every page but the last has the next one right behind it: its next_at is that page's
    out = []
    for i, page in enumerate(pages):
        view = page_view(directory, policy, team, state, page)
        if i + 1 < len(pages):
            view = msgspec.structs.replace(view, next_at=pages[i + 1].at)
        out.append(view)
    return out


def plan_start(
    directory: Directory,
    incident: Incident,
    owner: str,
    now: datetime,
    previous: EscalationRecord | None,
    reopened: bool = False,
) -> EscalationRecord | str:
    """Start the escalation of an incident that pages: the first step pages at ``now``.
    A stored escalation is left alone (a replayed ``opened`` must not page twice) unless
    it ended and the incident ``reopened``. Returns the record, or why nothing starts."""
    if previous is not None and not (reopened and previous.status in ENDED):
        return "already escalating" if previous.status not in ENDED else "escalation ended"
    found = team_policy(directory, incident)
    if isinstance(found, str):
        return found
    team, policy = found
    state, pages = start(policy, incident.id, now)
    rev = 0
    if previous is not None:
        state = replace(state, triggered=previous.triggered + 1)
        rev = previous.rev
    outbox = _pages(directory, policy, team, state, pages)
    return _record(state, owner, team, rev, outbox, now.timestamp() + LEASE_S)


def plan_tick(
    directory: Directory, rec: EscalationRecord, now: datetime
) -> EscalationRecord | None:
    """The steps due by ``now`` page (a late owner catches up step by step; an
    acknowledgement that timed out re-triggers), and pages left in the outbox by a worker
    whose lease ran out are claimed: the record returned holds every page the caller must
    publish, under its lease. Nothing while another worker's lease runs; a policy removed
    meanwhile ends the escalation."""
    t = now.timestamp()
    if rec.outbox and rec.lease > t:
        return None
    policy = directory.policies.get(rec.policy)
    if policy is None:
        return msgspec.structs.replace(
            rec, status="exhausted", next_at=None, outbox=[], rev=rec.rev + 1
        )
    if rec.next_at is None or rec.next_at > t:
        if not rec.outbox:
            return None
        return msgspec.structs.replace(rec, lease=t + LEASE_S, rev=rec.rev + 1)
    state, pages = tick(policy, state_of(rec, policy), now)
    outbox = list(rec.outbox) + _pages(directory, policy, rec.team, state, pages)
    return _record(state, rec.owner, rec.team, rec.rev, outbox, t + LEASE_S)


def plan_ack(directory: Directory, rec: EscalationRecord, at: datetime) -> EscalationRecord | None:
    """An acknowledgement at ``at`` stops the escalation (the policy's ``ack_timeout``
    re-triggers it later). Nothing changes once it ended."""
    policy = directory.policies.get(rec.policy)
    if rec.status in ENDED or policy is None:
        return None
    state = acknowledge(policy, state_of(rec, policy), at)
    return _record(state, rec.owner, rec.team, rec.rev, list(rec.outbox), rec.lease)


def plan_end(rec: EscalationRecord) -> EscalationRecord | None:
    """The incident was resolved (or merged away): the escalation ends for good, and pages
    not yet published are dropped (paging for a closed incident only disturbs)."""
    if rec.status in ENDED:
        return None
    ended = resolve(
        EscalationState(rec.incident, rec.policy, "escalating", 0, 0, None, (), rec.triggered)
    )
    return msgspec.structs.replace(
        rec, status=ended.status, next_at=None, outbox=[], rev=rec.rev + 1
    )


def sent(rec: EscalationRecord, pages: list[EscalationPage]) -> EscalationRecord | None:
    """The record once ``pages`` were published: without them in its outbox (None: none of
    them is there any more)."""
    left = [p for p in rec.outbox if p not in pages]
    if len(left) == len(rec.outbox):
        return None
    return msgspec.structs.replace(rec, outbox=left, rev=rec.rev + 1)


def escalated_event(incident: Incident, page: EscalationPage) -> IncidentEvent:
    """The ``escalated`` incident event of one page."""
    names = ", ".join(p.name or p.person for p in page.paged) or "nobody on call"
    detail = (
        f"escalation step {page.step}/{page.steps} (pass {page.cycle}) of policy "
        f"{page.policy} for team {page.team}: paged {names}"
    )
    return IncidentEvent(
        type=EventType.escalated,
        incident=incident,
        at=page.due_at,
        detail=detail,
        escalation=page,
    )
