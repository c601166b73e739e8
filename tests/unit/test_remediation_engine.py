"""The engine with in-memory state and a recording executor: modes, approvals, loops,
crashes, rollbacks and injection attempts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pipeline.adapters.remediation.memory_state import MemoryRemediationState
from pipeline.domain.remediation.actions import ActionKind
from pipeline.domain.remediation.audit import AuditKind, AuditRecord
from pipeline.domain.remediation.engine import Engine, EngineSettings
from pipeline.domain.remediation.guards import Approval, BreakerSettings, Decision
from pipeline.domain.remediation.ports import ExecContext, ExecResult
from pipeline.domain.remediation.runbook import runbook_from_dict
from pipeline.domain.remediation.targets import Target, inventory_from_dict
from tests.unit.test_remediation_runbook import incident

INV = inventory_from_dict(
    {
        "services": {
            "cartservice": {
                "supervisor": {"url": "http://127.0.0.1:9001/RPC2", "programs": ["cart-1"]}
            },
            "frontend": {"kubernetes": {"namespace": "shop", "deployment": "frontend"}},
        }
    }
)


@dataclass
class Call:
    kind: ActionKind
    target: Target
    params: dict[str, Any]
    ctx: ExecContext
    dry_run: bool


@dataclass
class FakeExecutor:
    calls: list[Call] = field(default_factory=list)
    ok: bool = True
    undo: dict[str, Any] = field(default_factory=dict)
    crash: bool = False

    def execute(
        self,
        kind: ActionKind,
        target: Target,
        params: dict[str, Any],
        ctx: ExecContext,
        dry_run: bool,
    ) -> ExecResult:
        self.calls.append(Call(kind, target, params, ctx, dry_run))
        if self.crash and not dry_run and kind is not ActionKind.process_status:
            raise KeyboardInterrupt("worker killed mid-action")
        return ExecResult(ok=self.ok, detail="done", undo={} if dry_run else self.undo)

    def list_instances(self, kind: ActionKind, target: Target) -> list[str] | None:
        return ["frontend-a", "frontend-b"]

    def unhealthy(self, kind: ActionKind, target: Target) -> list[str] | None:
        return ["cart-1", "stranger"]

    @property
    def real(self) -> list[Call]:
        return [c for c in self.calls if not c.dry_run and c.kind is not ActionKind.process_status]


def book(**over: Any) -> Any:
    data: dict[str, Any] = {
        "id": "restart",
        "title": "Restart",
        "mode": "auto",
        "match": {"alert_names": ["Process*"]},
        "diagnostics": [{"id": "status", "action": "process.status"}],
        "steps": [{"id": "restart", "action": "process.restart", "select": "one", "verify_s": 60}],
        "guards": {"max_share": 1.0, "cooldown_s": 600, "max_tries": 2, "min_score": 0.5},
    }
    data.update(over)
    return runbook_from_dict(data)


def engine(
    rb: Any = None, executor: FakeExecutor | None = None, state: Any = None, **settings: Any
) -> tuple[Engine, FakeExecutor, MemoryRemediationState]:
    ex = executor or FakeExecutor()
    st = state or MemoryRemediationState()
    return Engine([rb or book()], INV, st, ex, settings=EngineSettings(**settings)), ex, st


def kinds(records: list[AuditRecord]) -> list[str]:
    return [str(r.kind) for r in records]


def test_auto_restarts_then_verifies_when_the_alerts_resolve() -> None:
    eng, ex, st = engine()
    out = eng.on_incident(incident(), now=0)
    assert kinds(out) == ["proposed", "diagnostic", "dry_run", "executed"]
    assert [(c.kind, c.target.selected, c.dry_run) for c in ex.calls] == [
        (ActionKind.process_status, ("cart-1",), False),
        (ActionKind.process_restart, ("cart-1",), True),
        (ActionKind.process_restart, ("cart-1",), False),
    ]
    assert eng.on_incident(incident(), now=5) == []  # same incident again: nothing repeats
    out = eng.on_incident(incident(firing=0), now=30)
    assert kinds(out) == ["verified"]
    assert eng.model.rate("restart", "cartservice") > 0.5
    assert out[0].action_id == ex.real[0].ctx.action_id
    assert st.pending() == [] and st.locks == {}


def test_suggest_only_proposes() -> None:
    eng, ex, _ = engine(book(mode="suggest"))
    out = eng.on_incident(incident(), now=0)
    assert kinds(out) == ["proposed", "diagnostic", "refused"]
    assert out[-1].guard == "mode"
    assert ex.real == []


def test_approve_runs_only_after_an_allowed_approval() -> None:
    eng, ex, _ = engine(book(mode="approve", approvers=["alice"]))
    out = eng.on_incident(incident(), now=0)
    assert kinds(out) == ["proposed", "diagnostic", "refused"]
    assert out[-1].guard == "approval" and "waiting" in out[-1].detail
    assert ex.real == []
    out = eng.on_approval(
        "inc-1", "restart", Approval(user="mallory", decision=Decision.approve, at=1)
    )
    assert kinds(out) == ["refused"] and "mallory may not approve" in out[0].detail
    assert ex.real == []
    assert eng.on_incident(incident(), now=2) == []
    out = eng.on_approval(
        "inc-1", "restart", Approval(user="alice", decision=Decision.approve, at=3)
    )
    assert kinds(out) == ["approved", "dry_run", "executed"]
    assert out[0].actor == "alice"
    assert len(ex.real) == 1


def test_a_denial_stops_it_for_good() -> None:
    eng, ex, _ = engine(book(mode="approve", approvers=["alice"]))
    eng.on_incident(incident(), now=0)
    out = eng.on_approval("inc-1", "restart", Approval(user="alice", decision=Decision.deny, at=1))
    assert kinds(out) == ["denied", "refused"]
    assert "denied by alice" in out[1].detail
    eng.on_approval("inc-1", "restart", Approval(user="alice", decision=Decision.approve, at=2))
    eng.on_incident(incident(), now=3)
    assert ex.real == []
    assert eng.model.rate("restart", "cartservice") < 0.5


def test_failed_verification_retries_then_pages() -> None:
    eng, ex, _ = engine()
    eng.on_incident(incident(), now=0)
    out = eng.tick(now=61)  # still firing at the deadline: try 2 at once
    assert kinds(out) == ["verification_failed", "dry_run", "executed"]
    assert out[-1].try_no == 1
    assert eng.on_incident(incident(), now=62) == []  # verifying: nothing new
    out = eng.tick(now=200)
    assert kinds(out) == ["verification_failed", "escalated"]
    assert out[-1].page
    assert eng.on_incident(incident(), now=300) == []
    assert eng.tick(now=400) == []
    assert len(ex.real) == 2


def test_scale_is_rolled_back_when_verification_fails() -> None:
    rb = book(
        id="scale",
        diagnostics=[],
        steps=[
            {"id": "scale", "action": "kubernetes.scale", "params": {"replicas": 6}, "verify_s": 60}
        ],
        guards={"max_tries": 1},
    )
    eng, ex, _ = engine(rb, FakeExecutor(undo={"replicas": 2}))
    eng.on_incident(incident(root="frontend", candidates=(("frontend", 0.9),)), now=0)
    out = eng.tick(now=60)
    assert kinds(out) == ["verification_failed", "rolled_back", "escalated"]
    assert out[1].params["replicas"] == 2
    assert ex.calls[-1].params["replicas"] == 2


def test_flapping_service_is_stopped_by_cooldown_and_breaker() -> None:
    # every incident is "fixed", then the service fails again: a restart loop
    st = MemoryRemediationState()
    rb = book(guards={"max_share": 1.0, "cooldown_s": 0, "max_tries": 2})
    eng, ex, _ = engine(rb, state=st, breaker=BreakerSettings(max_per_service=3, window_s=3600))
    records: list[AuditRecord] = []
    for i in range(10):
        inc = incident()
        inc.id = f"inc-{i}"
        records += eng.on_incident(inc, now=i * 100)
        inc.alert_counts[0].firing = 0
        records += eng.on_incident(inc, now=i * 100 + 10)
    assert len(ex.real) == 3
    refusals = [r for r in records if r.kind is AuditKind.refused]
    assert {r.guard for r in refusals} == {"breaker"}
    assert all(r.page for r in refusals)
    # and with a cooldown, the second restart within it is refused
    eng2, ex2, _ = engine(book(guards={"max_share": 1.0, "cooldown_s": 600}))
    eng2.on_incident(incident(), now=0)
    eng2.on_incident(incident(firing=0), now=10)
    again = incident()
    again.id = "inc-2"
    out = eng2.on_incident(again, now=100)
    assert out[-1].guard == "cooldown"
    assert len(ex2.real) == 1


def test_a_worker_killed_mid_action_neither_repeats_nor_loses_it() -> None:
    st = MemoryRemediationState()
    eng, _, _ = engine(state=st, executor=FakeExecutor(crash=True))
    with pytest.raises(KeyboardInterrupt):
        eng.on_incident(incident(), now=0)
    assert len(st.pending()) == 1
    # a new worker on the same state
    eng2, ex2, _ = engine(state=st)
    out = eng2.tick(now=1)
    assert kinds(out) == ["executed"] and "not repeated" in out[0].detail
    assert eng2.on_incident(incident(), now=2) == []
    assert ex2.real == []
    out = eng2.on_incident(incident(firing=0), now=3)
    assert kinds(out) == ["verified"]


def test_kill_switch_stops_everything() -> None:
    eng, ex, _ = engine(state=MemoryRemediationState(kill=True))
    out = eng.on_incident(incident(), now=0)
    assert [r.guard for r in out if r.kind is AuditKind.refused] == ["kill_switch", "kill_switch"]
    assert ex.calls == []


def test_low_confidence_and_unknown_services_do_nothing() -> None:
    eng, ex, _ = engine()
    low = incident(candidates=(("cartservice", 0.3), ("frontend", 0.2)))
    assert kinds(eng.on_incident(low, now=0))[-1] == "refused"
    assert eng.state.records[-1].guard == "confidence"
    eng2, ex2, _ = engine()
    out = eng2.on_incident(
        incident(root="paymentservice", candidates=(("paymentservice", 0.9),)), now=0
    )
    assert {r.guard for r in out if r.kind is AuditKind.refused} == {"no_target"}
    assert ex.real == [] and ex2.calls == []


@pytest.mark.parametrize(
    "hostile",
    [
        "$(touch /tmp/pwned)",
        "`id`",
        "cart-1; rm -rf /",
        "{{ 7*7 }}",
        "${HOME}",
        "../../../etc/passwd",
        "cart-1\nreboot",
        "' OR 1=1 --",
    ],
)
def test_alert_text_never_reaches_an_executor(hostile: str) -> None:
    rb = book(
        steps=[
            {"id": "restart", "action": "process.restart", "select": "alerting"},
        ]
    )
    eng, ex, _ = engine(rb)
    eng.on_incident(incident(), now=0, labels={"pod": [hostile], "instance": [hostile, "cart-1"]})
    for call in ex.calls:
        seen = [
            *call.target.selected,
            *call.target.instances,
            call.target.locator,
            call.target.service,
            *map(str, call.params.values()),
            call.ctx.incident_id,
            call.ctx.runbook_id,
            call.ctx.step_id,
        ]
        assert all(hostile not in s for s in seen)
    assert [c.target.selected for c in ex.real] == [("cart-1",)]
    # a hostile label alone selects nothing: refused, never "all"
    eng2, ex2, _ = engine(rb)
    out = eng2.on_incident(incident(), now=0, labels={"pod": [hostile]})
    assert out[-1].guard == "blast_radius"
    assert ex2.real == []


def test_unhealthy_selection_takes_only_inventory_names_the_platform_reports() -> None:
    rb = book(steps=[{"id": "restart", "action": "process.restart", "select": "unhealthy"}])
    eng, ex, _ = engine(rb)
    eng.on_incident(incident(), now=0)
    assert [c.target.selected for c in ex.real] == [("cart-1",)]


def test_stale_events_start_nothing_but_still_verify() -> None:
    eng, ex, st = engine()
    assert eng.on_incident(incident(), now=0, fresh=False) == []
    assert ex.calls == [] and st.facts("inc-1") is not None
    eng.on_incident(incident(), now=1)
    assert len(ex.real) == 1
    assert kinds(eng.on_incident(incident(firing=0), now=2, fresh=False)) == ["verified"]
