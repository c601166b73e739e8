"""Each guard alone: it passes what it should and its refusal names it."""

from __future__ import annotations

import msgspec
import pytest

from pipeline.domain.remediation.audit import (
    AuditKind,
    AuditRecord,
    action_id,
    decode_record,
    encode_record,
    scrub,
)
from pipeline.domain.remediation.guards import (
    Approval,
    BreakerSettings,
    Decision,
    Guard,
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
from pipeline.domain.remediation.matching import IncidentFacts
from pipeline.domain.remediation.runbook import Guards, Mode
from pipeline.domain.remediation.success import SuccessModel
from pipeline.domain.remediation.targets import Target
from pipeline.domain.remediation.verification import (
    NextStep,
    Outcome,
    PendingAction,
    Phase,
    after_failure,
    check,
    inverse_of,
)


def test_kill_switch() -> None:
    assert kill_switch(False) is None
    r = kill_switch(True)
    assert r is not None and r.guard is Guard.kill_switch


def test_mode_suggest_never_runs() -> None:
    assert mode_gate(Mode.auto) is None
    assert mode_gate(Mode.approve) is None
    r = mode_gate(Mode.suggest)
    assert r is not None and r.guard is Guard.mode


def test_approval_needs_an_allowed_approver_and_a_denial_wins() -> None:
    approvers = ["alice", "bob"]
    assert approval_gate(Mode.auto, approvers, []) is None
    waiting = approval_gate(Mode.approve, approvers, [])
    assert waiting is not None and waiting.pending and waiting.guard is Guard.approval
    mallory = [Approval(user="mallory", decision=Decision.approve, at=1)]
    still = approval_gate(Mode.approve, approvers, mallory)
    assert still is not None and still.pending
    assert (
        approval_gate(
            Mode.approve,
            approvers,
            [*mallory, Approval(user="bob", decision=Decision.approve, at=2)],
        )
        is None
    )
    denied = approval_gate(
        Mode.approve,
        approvers,
        [
            Approval(user="alice", decision=Decision.approve, at=1),
            Approval(user="bob", decision=Decision.deny, at=2),
        ],
    )
    assert denied is not None and not denied.pending and "denied by bob" in denied.reason


def facts(score: float = 0.9, margin: float = 0.5, root: str | None = "svc") -> IncidentFacts:
    return IncidentFacts(incident_id="i", root_cause=root, score=score, margin=margin)


def test_confidence_gate_score_and_margin() -> None:
    g = Guards(min_score=0.6, min_margin=0.2)
    assert confidence_gate(facts(), g) is None
    low = confidence_gate(facts(score=0.5), g)
    assert low is not None and low.guard is Guard.confidence and "score 0.50" in low.reason
    close = confidence_gate(facts(margin=0.1), g)
    assert close is not None and "margin" in close.reason
    unknown = confidence_gate(facts(root=None), g)
    assert unknown is not None and "no root cause" in unknown.reason


def test_success_rate_gate_with_the_learned_rate() -> None:
    model = SuccessModel()
    g = Guards(min_success_rate=0.4)
    assert success_rate_gate(model.rate("rb", "svc"), g) is None  # prior 0.5
    for _ in range(3):
        model.learn("rb", "svc", AuditKind.rolled_back)
    rate = model.rate("rb", "svc")
    assert rate == pytest.approx(1 / 5)
    r = success_rate_gate(rate, g)
    assert r is not None and r.guard is Guard.success_rate
    assert model.learn("rb", "svc", AuditKind.proposed) is None
    up = model.learn("rb", "svc", AuditKind.verified)
    assert up is not None and up.rate_after > up.rate_before and up.n == 4
    again = SuccessModel.restore(model.snapshot())
    assert again.rate("rb", "svc") == pytest.approx(model.rate("rb", "svc"))


def test_tries_gate_pages() -> None:
    g = Guards(max_tries=2)
    assert tries_gate(1, g) is None
    r = tries_gate(2, g)
    assert r is not None and r.page and r.guard is Guard.max_tries


def target(instances: tuple[str, ...], selected: tuple[str, ...]) -> Target:
    return Target(service="svc", kind="process.restart", instances=instances, selected=selected)


def test_blast_radius_never_all_from_an_empty_list() -> None:
    assert blast_radius(target((), ()), per_instance=False, max_share=0.5) is None
    empty = blast_radius(target((), ()), per_instance=True, max_share=1.0)
    assert (
        empty is not None
        and empty.guard is Guard.blast_radius
        and "no known instances" in empty.reason
    )
    none = blast_radius(target(("a", "b"), ()), per_instance=True, max_share=1.0)
    assert none is not None and "none named" in none.reason
    assert blast_radius(target(("a", "b"), ("a",)), per_instance=True, max_share=0.5) is None
    too_many = blast_radius(target(("a", "b", "c"), ("a", "b")), per_instance=True, max_share=0.5)
    assert too_many is not None and "2 of 3" in too_many.reason
    stranger = blast_radius(target(("a",), ("z",)), per_instance=True, max_share=1.0)
    assert stranger is not None and "not known" in stranger.reason


def test_breaker_global_and_per_service_then_pages() -> None:
    s = BreakerSettings(max_global=3, max_per_service=2, window_s=100)
    assert breaker([(10, "a")], "a", 50, s) is None
    per = breaker([(10, "a"), (20, "a")], "a", 50, s)
    assert per is not None and per.guard is Guard.breaker and per.page and "on a" in per.reason
    assert breaker([(10, "a"), (20, "a")], "b", 50, s) is None
    glob = breaker([(10, "a"), (20, "b"), (30, "c")], "d", 50, s)
    assert glob is not None and glob.page
    assert breaker([(10, "a"), (20, "a")], "a", 200, s) is None  # out of the window


def test_cooldown_per_runbook_and_target_but_not_for_the_same_incidents_retry() -> None:
    g = Guards(cooldown_s=600)
    assert cooldown(None, "i2", 100, g) is None
    r = cooldown((100, "i1"), "i2", 400, g)
    assert r is not None and r.guard is Guard.cooldown and "300 s left" in r.reason
    assert cooldown((100, "i1"), "i1", 400, g) is None
    assert cooldown((100, "i1"), "i2", 800, g) is None


def test_lock_per_target() -> None:
    assert lock(None, "act-1") is None
    assert lock("act-1", "act-1") is None
    r = lock("act-9", "act-1")
    assert r is not None and r.guard is Guard.lock and "act-9" in r.reason


def pending(
    action: str = "kubernetes.scale", undo: dict[str, int] | None = None, try_no: int = 0
) -> PendingAction:
    return msgspec.convert(
        {
            "action_id": "act",
            "incident_id": "i",
            "runbook_id": "rb",
            "step_id": "s",
            "action": action,
            "service": "svc",
            "target_key": "k",
            "instances": [],
            "locator": "ns/d",
            "params": {"replicas": 6},
            "try_no": try_no,
            "started_at": 0,
            "deadline": 100,
            "phase": "verifying",
            "undo": undo or {},
        },
        PendingAction,
    )


def test_verification_time_limit_then_rollback_and_escalation() -> None:
    pa = pending(undo={"replicas": 2})
    assert check(pa, 50) is Outcome.waiting
    assert check(pa, 100) is Outcome.failed
    pa.alerts_resolved = True
    assert check(pa, 150) is Outcome.verified
    assert after_failure(pending(undo={"replicas": 2}), max_tries=2) == [
        NextStep.rollback,
        NextStep.retry,
    ]
    assert after_failure(pending(undo={"replicas": 2}, try_no=1), max_tries=2) == [
        NextStep.rollback,
        NextStep.escalate,
    ]
    assert after_failure(pending(action="process.restart"), max_tries=1) == [NextStep.escalate]
    assert inverse_of(pending(undo={"replicas": 2})) == ("kubernetes.scale", {"replicas": 2})
    assert inverse_of(pending(action="process.restart")) is None
    executing = pending()
    executing.phase = Phase.executing
    assert check(executing, 1000) is Outcome.waiting


def test_audit_records_roundtrip_and_secrets_scrubbed() -> None:
    rec = AuditRecord(
        id="x",
        kind=AuditKind.refused,
        at=1.0,
        incident_id="i",
        runbook_id="rb",
        guard="breaker",
        params={"token_env": "RUNDECK_TOKEN"},
        detail=scrub("401 for token s3cr3t", ["s3cr3t"]),
    )
    back = decode_record(encode_record(rec))
    assert back == rec
    assert "s3cr3t" not in encode_record(rec).decode()
    assert action_id("i", "rb", "s", 0) == action_id("i", "rb", "s", 0)
    assert action_id("i", "rb", "s", 0) != action_id("i", "rb", "s", 1)
