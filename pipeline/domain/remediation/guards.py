"""Guards: pure policies that may refuse an action. Each returns ``None`` (pass) or a
:class:`Refusal` naming itself, so every refusal in the audit trail says which guard
stopped what and why. :func:`first_refusal` runs them in the order of :data:`ORDER`.

The state they read (locks, last runs, recent executions, approvals) is passed in; the
engine keeps it (in Redis in the worker, in memory in the benchmark).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import msgspec

from pipeline.domain.remediation.matching import IncidentFacts
from pipeline.domain.remediation.runbook import Guards, Mode
from pipeline.domain.remediation.targets import Target


class Guard(StrEnum):
    kill_switch = "kill_switch"
    mode = "mode"
    approval = "approval"
    confidence = "confidence"
    success_rate = "success_rate"
    lock = "lock"
    cooldown = "cooldown"
    breaker = "breaker"
    blast_radius = "blast_radius"
    no_target = "no_target"
    max_tries = "max_tries"


#: the order guards are asked in: cheapest and most absolute first
ORDER = (
    Guard.kill_switch,
    Guard.no_target,
    Guard.mode,
    Guard.approval,
    Guard.confidence,
    Guard.success_rate,
    Guard.max_tries,
    Guard.blast_radius,
    Guard.breaker,
    Guard.cooldown,
    Guard.lock,
)


class Refusal(msgspec.Struct, kw_only=True, frozen=True):
    guard: Guard
    reason: str
    #: a person must be paged (the breaker tripped, tries ran out)
    page: bool = False
    #: not a no: waiting for something (an approval) that may still come
    pending: bool = False


class Decision(StrEnum):
    approve = "approve"
    deny = "deny"


class Approval(msgspec.Struct, kw_only=True, frozen=True):
    """A person's approval or denial of one incident's runbook (from ``feedback``)."""

    user: str
    decision: Decision
    at: float


@dataclass(frozen=True)
class BreakerSettings:
    """At most ``max_global`` actions in ``window_s`` everywhere, and ``max_per_service``
    per service; then stop and page a person."""

    max_global: int = 10
    max_per_service: int = 3
    window_s: float = 3600.0


def kill_switch(enabled: bool) -> Refusal | None:
    if enabled:
        return Refusal(guard=Guard.kill_switch, reason="the global kill switch is on")
    return None


def mode_gate(mode: Mode) -> Refusal | None:
    """``suggest`` runbooks never execute: a person follows the steps."""
    if mode is Mode.suggest:
        return Refusal(guard=Guard.mode, reason="mode suggest: proposed to a person, not run")
    return None


def approval_gate(
    mode: Mode, approvers: Sequence[str], decisions: Iterable[Approval]
) -> Refusal | None:
    """``approve`` runbooks run only after an allowed approver approved; the first allowed
    denial stops them for good. Decisions by anyone not in ``approvers`` do not count."""
    if mode is not Mode.approve:
        return None
    allowed = [d for d in sorted(decisions, key=lambda d: d.at) if d.user in approvers]
    for d in allowed:
        if d.decision is Decision.deny:
            return Refusal(guard=Guard.approval, reason=f"denied by {d.user}")
    if any(d.decision is Decision.approve for d in allowed):
        return None
    return Refusal(
        guard=Guard.approval,
        reason=f"waiting for approval by one of {', '.join(approvers)}",
        pending=True,
    )


def confidence_gate(facts: IncidentFacts, guards: Guards) -> Refusal | None:
    """The root cause must be known, ranked at least ``min_score`` and lead the next
    candidate by at least ``min_margin``."""
    if facts.root_cause is None:
        return Refusal(guard=Guard.confidence, reason="the incident has no root cause")
    if facts.score < guards.min_score:
        return Refusal(
            guard=Guard.confidence,
            reason=f"root-cause score {facts.score:.2f} is below {guards.min_score:.2f}",
        )
    if facts.margin < guards.min_margin:
        return Refusal(
            guard=Guard.confidence,
            reason=f"root-cause margin {facts.margin:.2f} is below {guards.min_margin:.2f}",
        )
    return None


def success_rate_gate(rate: float, guards: Guards) -> Refusal | None:
    """The learned success rate of this runbook for this root cause kind."""
    if rate < guards.min_success_rate:
        return Refusal(
            guard=Guard.success_rate,
            reason=f"learned success rate {rate:.2f} is below {guards.min_success_rate:.2f}",
        )
    return None


def tries_gate(tries: int, guards: Guards) -> Refusal | None:
    """After ``max_tries`` failed verifications a person takes over."""
    if tries >= guards.max_tries:
        return Refusal(
            guard=Guard.max_tries,
            reason=f"{tries} tries failed verification (max_tries {guards.max_tries}): "
            "paging a person",
            page=True,
        )
    return None


def blast_radius(target: Target, per_instance: bool, max_share: float) -> Refusal | None:
    """A per-instance action touches at least one and at most ``max_share`` of the
    service's known instances; an empty instance list never means "all"."""
    if not per_instance:
        return None
    if not target.instances:
        return Refusal(
            guard=Guard.blast_radius,
            reason=f"no known instances of {target.service}: refusing rather than acting on all",
        )
    if not target.selected:
        return Refusal(
            guard=Guard.blast_radius,
            reason=f"no instance of {target.service} selected (none named by its alerts)",
        )
    if any(s not in target.instances for s in target.selected):
        return Refusal(guard=Guard.blast_radius, reason="a selected instance is not known")
    share = len(target.selected) / len(target.instances)
    if share > max_share + 1e-9:
        return Refusal(
            guard=Guard.blast_radius,
            reason=f"{len(target.selected)} of {len(target.instances)} instances of "
            f"{target.service} ({share:.0%}) exceeds max_share {max_share:.0%}",
        )
    return None


def breaker(
    recent: Iterable[tuple[float, str]], service: str, now: float, settings: BreakerSettings
) -> Refusal | None:
    """``recent``: (time, service) of executed actions. Trips at the limit and pages."""
    window = [(t, s) for t, s in recent if now - settings.window_s < t <= now]
    if len(window) >= settings.max_global:
        return Refusal(
            guard=Guard.breaker,
            reason=f"{len(window)} actions in the last {settings.window_s:g} s "
            f"(max {settings.max_global}): stopped, paging a person",
            page=True,
        )
    mine = sum(1 for _, s in window if s == service)
    if mine >= settings.max_per_service:
        return Refusal(
            guard=Guard.breaker,
            reason=f"{mine} actions on {service} in the last {settings.window_s:g} s "
            f"(max {settings.max_per_service}): stopped, paging a person",
            page=True,
        )
    return None


def cooldown(
    last: tuple[float, str] | None, incident_id: str, now: float, guards: Guards
) -> Refusal | None:
    """No run of the same runbook on the same target within ``cooldown_s`` of the last,
    except retries for the same incident (``max_tries`` bounds those). ``last``: (time,
    incident id) of the last execution."""
    if last is None:
        return None
    at, last_incident = last
    if last_incident == incident_id:
        return None
    left = guards.cooldown_s - (now - at)
    if left > 0:
        return Refusal(
            guard=Guard.cooldown,
            reason=f"ran on this target {now - at:.0f} s ago for {last_incident}; "
            f"cooldown {guards.cooldown_s:g} s ({left:.0f} s left)",
        )
    return None


def lock(holder: str | None, action_id: str) -> Refusal | None:
    """One action per target at a time; ``holder`` is the action id holding the lock."""
    if holder is not None and holder != action_id:
        return Refusal(guard=Guard.lock, reason=f"target is locked by action {holder}")
    return None
