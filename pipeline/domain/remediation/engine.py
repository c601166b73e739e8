"""The remediation engine: incidents and approvals in, guarded actions and audit records out.

Pure coordination: state and executors are passed in (:mod:`.ports`), time is an argument.
For each incident event it picks the incident's runbook (the first match), proposes it
once, runs its read-only diagnostics once, and walks its steps in order: each step is
checked by every guard (:func:`first_refusal`), dry-run first, executed, then verified by
the timer (:meth:`Engine.tick`). A failed verification rolls back where an inverse exists
and moves to the next step; when every step of a try failed, the next try starts from the
first step, and after ``max_tries`` a person is paged. Before an action runs, its
:class:`~.verification.PendingAction` is stored under a deterministic id, so after a crash
the action is verified, never run twice, and never forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.domain.remediation.actions import CATALOGUE
from pipeline.domain.remediation.audit import (
    SYSTEM,
    AuditKind,
    AuditRecord,
    action_id,
    record_id,
)
from pipeline.domain.remediation.guards import (
    Approval,
    BreakerSettings,
    Decision,
    Guard,
    Refusal,
    approval_gate,
    blast_radius,
    breaker,
    confidence_gate,
    cooldown,
    kill_switch,
    lock,
    mode_gate,
    success_rate_gate,
    tries_gate,
)
from pipeline.domain.remediation.matching import IncidentFacts, facts_of, matching
from pipeline.domain.remediation.ports import (
    ExecContext,
    Executor,
    RemediationState,
)
from pipeline.domain.remediation.runbook import Runbook, Step
from pipeline.domain.remediation.success import SuccessModel, SuccessUpdate
from pipeline.domain.remediation.targets import (
    Inventory,
    NoTarget,
    Selection,
    Target,
    resolve_target,
)
from pipeline.domain.remediation.verification import (
    NextStep,
    Outcome,
    PendingAction,
    Phase,
    after_failure,
    check,
    inverse_of,
)
from pipeline.domain.schemas import Incident
from pipeline.domain.topology import Topology


@dataclass(frozen=True)
class EngineSettings:
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    #: a target's lock expires after this long even if its holder never releases it
    lock_ttl_s: float = 3600.0
    #: check every action with a dry run first where the executor has one
    dry_run_first: bool = True


@dataclass(frozen=True)
class GuardInputs:
    """Everything the guards read for one proposed action."""

    kill_switch: bool
    approvals: list[Approval]
    success_rate: float
    tries: int
    recent: list[tuple[float, str]]
    last_run: tuple[float, str] | None
    lock_holder: str | None


def first_refusal(
    rb: Runbook,
    step: Step,
    facts: IncidentFacts,
    target: Target | NoTarget,
    inputs: GuardInputs,
    act_id: str,
    now: float,
    breaker_settings: BreakerSettings,
) -> Refusal | None:
    """The first guard (in :data:`~.guards.ORDER`) that refuses this action, or None."""
    if (r := kill_switch(inputs.kill_switch)) is not None:
        return r
    if isinstance(target, NoTarget):
        return Refusal(guard=Guard.no_target, reason=str(target))
    checks = (
        lambda: mode_gate(rb.mode),
        lambda: approval_gate(rb.mode, rb.approvers, inputs.approvals),
        lambda: confidence_gate(facts, rb.guards),
        lambda: success_rate_gate(inputs.success_rate, rb.guards),
        lambda: tries_gate(inputs.tries, rb.guards),
        lambda: blast_radius(target, CATALOGUE[step.action].per_instance, rb.guards.max_share),
        lambda: breaker(inputs.recent, target.service, now, breaker_settings),
        lambda: cooldown(inputs.last_run, facts.incident_id, now, rb.guards),
        lambda: lock(inputs.lock_holder, act_id),
    )
    for guard_check in checks:
        if (r := guard_check()) is not None:
            return r
    return None


class Engine:
    def __init__(
        self,
        runbooks: Iterable[Runbook],
        inventory: Inventory,
        state: RemediationState,
        executor: Executor,
        model: SuccessModel | None = None,
        settings: EngineSettings | None = None,
        topology: Topology | None = None,
    ) -> None:
        self.runbooks = list(runbooks)
        self.by_id = {rb.id: rb for rb in self.runbooks}
        self.inventory = inventory
        self.state = state
        self.executor = executor
        self.model = model or SuccessModel()
        self.settings = settings or EngineSettings()
        self.topology = topology
        #: model updates since the caller last took them (audited with the records)
        self.updates: list[SuccessUpdate] = []

    # -- inputs ---------------------------------------------------------------------------

    def runbook_for(self, facts: IncidentFacts) -> Runbook | None:
        books = matching(self.runbooks, facts, self.topology)
        return books[0] if books else None

    def on_incident(
        self,
        inc: Incident,
        now: float,
        labels: Mapping[str, Iterable[str]] | None = None,
        fresh: bool = True,
    ) -> list[AuditRecord]:
        """An incident event: note its facts, propose, diagnose and act as guards allow.
        A stale event (``fresh`` False: old history read at a first start or after a long
        outage) only updates facts and verifications; it starts nothing."""
        facts = facts_of(inc, labels)
        self.state.put_facts(facts)
        out: list[AuditRecord] = []
        if facts.firing == 0 or facts.resolved:
            for pa in self.state.pending():
                if pa.incident_id == inc.id and not pa.alerts_resolved:
                    pa.alerts_resolved = True
                    self.state.put_pending(pa)
            out += self.tick(now)
        rb = self.runbook_for(facts)
        if rb is None or not fresh:
            return out
        if self.state.mark(f"proposed|{inc.id}|{rb.id}"):
            out.append(self._proposal(rb, facts, now))
        if not facts.resolved:
            out += self._diagnose(rb, facts, now)
            out += self._advance(rb, facts, now)
        return out

    def on_approval(
        self, incident_id: str, runbook_id: str, approval: Approval, now: float | None = None
    ) -> list[AuditRecord]:
        """A person approved or denied an incident's runbook (from ``feedback``); ``now``
        (default: the approval's time) is when it arrived."""
        now = approval.at if now is None else now
        rb = self.by_id.get(runbook_id)
        base = {"incident_id": incident_id, "runbook_id": runbook_id, "at": now}
        if rb is None:
            return []
        if approval.user not in rb.approvers:
            why = (
                f"{approval.user} may not approve {rb.id} "
                f"(approvers: {', '.join(rb.approvers) or 'none'})"
            )
            return self.refuse_approval(incident_id, runbook_id, approval, why, now)
        self.state.add_approval(incident_id, runbook_id, approval)
        kind = AuditKind.approved if approval.decision is Decision.approve else AuditKind.denied
        out = [self._record(kind, f"{approval.user}:{approval.at}", actor=approval.user, **base)]
        facts = self.state.facts(incident_id)
        if kind is AuditKind.denied and facts is not None and facts.root_cause:
            self._learn(rb.id, facts.root_cause, AuditKind.denied)
        if facts is not None and not facts.resolved:
            out += self._advance(rb, facts, now)
        return out

    def refuse_approval(
        self, incident_id: str, runbook_id: str, approval: Approval, why: str, now: float
    ) -> list[AuditRecord]:
        """Record an approval or denial that does not count (``why``: one line), e.g. not
        signed with the approver's key; nothing else changes."""
        return [
            self._record(
                AuditKind.refused,
                f"{approval.user}:{approval.at}",
                actor=approval.user,
                guard=str(Guard.approval),
                detail=why,
                incident_id=incident_id,
                runbook_id=runbook_id,
                at=now,
            )
        ]

    def tick(self, now: float) -> list[AuditRecord]:
        """Verify pending actions: verified, still waiting, or failed at the deadline."""
        out: list[AuditRecord] = []
        for pa in self.state.pending():
            rb = self.by_id.get(pa.runbook_id)
            if rb is None:
                continue
            if pa.phase is Phase.executing:
                # found mid-action (a restart): it may have run; verify it, never repeat it
                pa.phase = Phase.verifying
                step = rb.step(pa.step_id)
                pa.deadline = pa.started_at + (step.verify_s if step else 300.0)
                self.state.put_pending(pa)
                out.append(
                    self._pending_record(
                        AuditKind.executed,
                        pa,
                        now,
                        ok=None,
                        detail="outcome unknown (worker restarted mid-action): "
                        "not repeated, verifying",
                    )
                )
            outcome = check(pa, now)
            if outcome is Outcome.verified:
                out.append(self._pending_record(AuditKind.verified, pa, now, ok=True))
                self._learn(rb.id, pa.service, AuditKind.verified)
                self._finish(pa)
                self.state.mark(f"closed|{pa.incident_id}|{rb.id}")
            elif outcome is Outcome.failed:
                out += self._failed(rb, pa, now, "alerts still firing at the verification deadline")
        return out

    # -- steps ----------------------------------------------------------------------------

    def _advance(self, rb: Runbook, facts: IncidentFacts, now: float) -> list[AuditRecord]:
        inc = facts.incident_id
        if not rb.steps or self.state.seen(f"closed|{inc}|{rb.id}"):
            return []
        if any(p.incident_id == inc and p.runbook_id == rb.id for p in self.state.pending()):
            return []
        try_no = self.state.tries(inc, rb.id)
        step = next(
            (
                s
                for s in rb.steps
                if not self.state.seen(f"done|{action_id(inc, rb.id, s.id, try_no)}")
            ),
            None,
        )
        if step is None:  # a try whose steps all ran: the next try starts
            try_no = self.state.add_try(inc, rb.id)
            step = rb.steps[0]
        act = action_id(inc, rb.id, step.id, try_no)
        target = self._target(step, facts)
        inputs = GuardInputs(
            kill_switch=self.state.kill_switch(),
            approvals=self.state.approvals(inc, rb.id),
            success_rate=self.model.rate(rb.id, facts.root_cause or ""),
            tries=try_no,
            recent=self.state.recent_runs(now - self.settings.breaker.window_s),
            last_run=None
            if isinstance(target, NoTarget)
            else self.state.last_run(rb.id, target.key),
            lock_holder=None
            if isinstance(target, NoTarget)
            else self.state.lock_holder(target.key),
        )
        refusal = first_refusal(rb, step, facts, target, inputs, act, now, self.settings.breaker)
        if (
            refusal is None
            and isinstance(target, Target)
            and not self.state.acquire(target.key, act, self.settings.lock_ttl_s)
        ):
            refusal = lock(self.state.lock_holder(target.key) or "?", act)
        if refusal is not None:
            return self._refused(rb, step, facts, target, act, try_no, refusal, now)
        assert isinstance(target, Target)
        return self._run(rb, step, facts, target, act, try_no, now)

    def _target(self, step: Step, facts: IncidentFacts) -> Target | NoTarget:
        try:
            pods = unhealthy = None
            if CATALOGUE[step.action].needs == "kubernetes":
                probe = resolve_target(step.action, facts.root_cause, self.inventory)
                pods = self.executor.list_instances(step.action, probe)
            if step.select is Selection.unhealthy:
                probe = resolve_target(
                    step.action, facts.root_cause, self.inventory, Selection.all, pods=pods
                )
                unhealthy = self.executor.unhealthy(step.action, probe)
            return resolve_target(
                step.action,
                facts.root_cause,
                self.inventory,
                step.select,
                facts.labels,
                pods,
                unhealthy,
            )
        except NoTarget as exc:
            return exc

    def _refused(
        self,
        rb: Runbook,
        step: Step,
        facts: IncidentFacts,
        target: Target | NoTarget,
        act: str,
        try_no: int,
        refusal: Refusal,
        now: float,
    ) -> list[AuditRecord]:
        inc = facts.incident_id
        final = (
            refusal.page
            or refusal.guard in (Guard.mode, Guard.no_target)
            or (refusal.guard is Guard.approval and not refusal.pending)
        )
        if final:
            self.state.mark(f"closed|{inc}|{rb.id}")
        if not self.state.mark(f"refused|{act}|{refusal.guard}|{refusal.pending}"):
            return []
        rec = self._record(
            AuditKind.refused,
            str(refusal.guard),
            incident_id=inc,
            runbook_id=rb.id,
            at=now,
            step_id=step.id,
            action=str(step.action),
            action_id=act,
            guard=str(refusal.guard),
            detail=refusal.reason,
            page=refusal.page,
            try_no=try_no,
            **_target_fields(target),
        )
        out = [rec]
        if refusal.page:
            out.append(
                self._record(
                    AuditKind.escalated,
                    act,
                    incident_id=inc,
                    runbook_id=rb.id,
                    at=now,
                    step_id=step.id,
                    action=str(step.action),
                    action_id=act,
                    page=True,
                    guard=str(refusal.guard),
                    detail=refusal.reason,
                    try_no=try_no,
                )
            )
        return out

    def _run(
        self,
        rb: Runbook,
        step: Step,
        facts: IncidentFacts,
        target: Target,
        act: str,
        try_no: int,
        now: float,
    ) -> list[AuditRecord]:
        ctx = ExecContext(
            incident_id=facts.incident_id, runbook_id=rb.id, step_id=step.id, action_id=act
        )
        pa = PendingAction(
            action_id=act,
            incident_id=facts.incident_id,
            runbook_id=rb.id,
            step_id=step.id,
            action=step.action,
            service=target.service,
            target_key=target.key,
            instances=list(target.selected),
            locator=target.locator,
            params=step.params,
            try_no=try_no,
            started_at=now,
            deadline=now + step.verify_s,
        )
        out: list[AuditRecord] = []
        if self.settings.dry_run_first:
            dry = self.executor.execute(step.action, target, step.params, ctx, dry_run=True)
            if not dry.unsupported:
                out.append(
                    self._pending_record(AuditKind.dry_run, pa, now, ok=dry.ok, detail=dry.detail)
                )
                if not dry.ok:
                    self.state.release(target.key, act)
                    self.state.mark(f"closed|{facts.incident_id}|{rb.id}")
                    out.append(
                        self._pending_record(
                            AuditKind.escalated,
                            pa,
                            now,
                            page=True,
                            detail=f"dry run failed: {dry.detail}",
                        )
                    )
                    return out
        # stored (and counted by breaker and cooldown) before it runs: a crash cannot hide it
        self.state.put_pending(pa)
        self.state.note_run(rb.id, target.key, target.service, facts.incident_id, now)
        res = self.executor.execute(step.action, target, step.params, ctx, dry_run=False)
        if not res.ok:
            out.append(self._pending_record(AuditKind.failed, pa, now, ok=False, detail=res.detail))
            out += self._failed(rb, pa, now, None)
            return out
        pa.phase = Phase.verifying
        pa.undo = res.undo
        self.state.put_pending(pa)
        out.append(self._pending_record(AuditKind.executed, pa, now, ok=True, detail=res.detail))
        return out

    def _failed(
        self, rb: Runbook, pa: PendingAction, now: float, why: str | None
    ) -> list[AuditRecord]:
        out: list[AuditRecord] = []
        if why is not None:
            out.append(
                self._pending_record(AuditKind.verification_failed, pa, now, ok=False, detail=why)
            )
        self._learn(rb.id, pa.service, AuditKind.verification_failed)
        is_last = rb.steps and pa.step_id == rb.steps[-1].id
        for nxt in after_failure(pa, rb.guards.max_tries):
            if nxt is NextStep.rollback:
                out.append(self._rollback(pa, now))
            elif nxt is NextStep.escalate and is_last:
                self.state.mark(f"closed|{pa.incident_id}|{rb.id}")
                out.append(
                    self._pending_record(
                        AuditKind.escalated,
                        pa,
                        now,
                        page=True,
                        detail=f"{pa.try_no + 1} tries failed (max_tries {rb.guards.max_tries}): "
                        "paging a person",
                    )
                )
        self._finish(pa)
        facts = self.state.facts(pa.incident_id)
        if facts is not None and not facts.resolved:  # the next step or try, at once
            out += self._advance(rb, facts, now)
        return out

    def _rollback(self, pa: PendingAction, now: float) -> AuditRecord:
        inverse = inverse_of(pa)
        assert inverse is not None
        kind, params = inverse
        target = Target(
            service=pa.service,
            kind=str(kind),
            instances=tuple(pa.instances),
            selected=tuple(pa.instances),
            locator=pa.locator,
        )
        ctx = ExecContext(
            incident_id=pa.incident_id,
            runbook_id=pa.runbook_id,
            step_id=pa.step_id,
            action_id=pa.action_id,
        )
        res = self.executor.execute(kind, target, params, ctx, dry_run=False)
        return self._pending_record(
            AuditKind.rolled_back, pa, now, ok=res.ok, detail=res.detail, params=params
        )

    def _finish(self, pa: PendingAction) -> None:
        self.state.mark(f"done|{pa.action_id}")
        self.state.drop_pending(pa.action_id)
        self.state.release(pa.target_key, pa.action_id)

    def _diagnose(self, rb: Runbook, facts: IncidentFacts, now: float) -> list[AuditRecord]:
        out: list[AuditRecord] = []
        for step in rb.diagnostics:
            act = action_id(facts.incident_id, rb.id, step.id, 0)
            if self.state.seen(f"done|{act}"):
                continue
            target = self._target(step, facts)
            refusal = kill_switch(self.state.kill_switch())
            if refusal is None and isinstance(target, NoTarget):
                refusal = Refusal(guard=Guard.no_target, reason=str(target))
            self.state.mark(f"done|{act}")
            if refusal is not None:
                out += self._refused(rb, step, facts, target, act, 0, refusal, now)
                continue
            assert isinstance(target, Target)
            ctx = ExecContext(
                incident_id=facts.incident_id, runbook_id=rb.id, step_id=step.id, action_id=act
            )
            res = self.executor.execute(step.action, target, step.params, ctx, dry_run=False)
            out.append(
                self._record(
                    AuditKind.diagnostic,
                    act,
                    incident_id=facts.incident_id,
                    runbook_id=rb.id,
                    at=now,
                    step_id=step.id,
                    action=str(step.action),
                    action_id=act,
                    params=step.params,
                    ok=res.ok,
                    detail=res.detail,
                    **_target_fields(target),
                )
            )
        return out

    def _proposal(self, rb: Runbook, facts: IncidentFacts, now: float) -> AuditRecord:
        steps = "; ".join(f"{s.id}: {s.action}" for s in rb.steps) or "no automated steps"
        return self._record(
            AuditKind.proposed,
            "0",
            incident_id=facts.incident_id,
            runbook_id=rb.id,
            at=now,
            service=facts.root_cause or "",
            detail=f"{rb.title} (mode {rb.mode}; {steps})",
        )

    def _learn(self, runbook_id: str, kind: str, outcome: AuditKind) -> None:
        update = self.model.learn(runbook_id, kind, outcome)
        if update is not None:
            self.updates.append(update)

    # -- records --------------------------------------------------------------------------

    def _pending_record(
        self, kind: AuditKind, pa: PendingAction, now: float, **fields: Any
    ) -> AuditRecord:
        base: dict[str, Any] = {
            "incident_id": pa.incident_id,
            "runbook_id": pa.runbook_id,
            "at": now,
            "step_id": pa.step_id,
            "action": str(pa.action),
            "action_id": pa.action_id,
            "service": pa.service,
            "instances": list(pa.instances),
            "locator": pa.locator,
            "params": pa.params,
            "try_no": pa.try_no,
        }
        base.update(fields)
        return self._record(kind, pa.action_id, **base)

    def _record(self, kind: AuditKind, seq: str, **fields: Any) -> AuditRecord:
        fields.setdefault("actor", SYSTEM)
        key = fields.get("action_id") or f"{fields['incident_id']}:{fields['runbook_id']}"
        rec = AuditRecord(id=record_id(key, kind, seq), kind=kind, **fields)
        self.state.append(rec)
        return rec


def _target_fields(target: Target | NoTarget) -> dict[str, Any]:
    if isinstance(target, NoTarget):
        return {}
    return {
        "service": target.service,
        "instances": list(target.selected),
        "locator": target.locator,
    }
