"""Verification after an action: the incident's alerts must resolve within the step's
``verify_s``; otherwise roll back where the action has an inverse, try again while tries
remain, and page a person once they ran out.

A :class:`PendingAction` is stored before the action runs and kept until its outcome is
known, so a worker restarted mid-action finds it (same idempotency id) and neither repeats
nor forgets it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

from pipeline.domain.remediation.actions import CATALOGUE, ActionKind


class Phase(StrEnum):
    #: recorded, executor not yet known to have finished (a restart must look, not redo)
    executing = "executing"
    #: executed, waiting for the alerts to resolve
    verifying = "verifying"


class PendingAction(msgspec.Struct, kw_only=True):
    action_id: str
    incident_id: str
    runbook_id: str
    step_id: str
    action: ActionKind
    service: str
    target_key: str
    instances: list[str]
    locator: str
    params: dict[str, Any]
    try_no: int
    started_at: float
    deadline: float
    phase: Phase = Phase.executing
    #: what the executor reported it changed (the inverse's parameters, e.g. old replicas)
    undo: dict[str, Any] = {}
    #: the incident's member alerts have all resolved since the action ran
    alerts_resolved: bool = False


class Outcome(StrEnum):
    waiting = "waiting"
    verified = "verified"
    failed = "failed"


class NextStep(StrEnum):
    rollback = "rollback"
    retry = "retry"
    escalate = "escalate"


def check(pending: PendingAction, now: float) -> Outcome:
    """Verified once the incident's alerts resolved, failed at the deadline."""
    if pending.phase is not Phase.verifying:
        return Outcome.waiting
    if pending.alerts_resolved:
        return Outcome.verified
    return Outcome.failed if now >= pending.deadline else Outcome.waiting


def after_failure(pending: PendingAction, max_tries: int) -> list[NextStep]:
    """What follows a failed verification: roll back first where an inverse exists and
    the executor reported what to restore, then retry or escalate."""
    steps: list[NextStep] = []
    if CATALOGUE[pending.action].inverse is not None and pending.undo:
        steps.append(NextStep.rollback)
    steps.append(NextStep.retry if pending.try_no + 1 < max_tries else NextStep.escalate)
    return steps


def inverse_of(pending: PendingAction) -> tuple[ActionKind, dict[str, Any]] | None:
    """The action that undoes ``pending`` and its parameters, if there is one."""
    inverse = CATALOGUE[pending.action].inverse
    if inverse is None or not pending.undo:
        return None
    return inverse, {**pending.params, **pending.undo}
