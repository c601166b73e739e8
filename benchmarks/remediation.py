"""Remediation benchmark: a seeded simulation of incidents on the Online Boutique services,
run through the real engine, guards and success model (in-memory state, simulated
executors), with and without automation.

Each incident has a true cause (a service) and a fault kind: ``crash`` (a restart fixes it),
``overload`` (scaling out fixes it) or ``other`` (no runbook action helps). The correlator's
root cause is right with probability ``--accuracy``; when wrong it names a neighbour, with
a lower score and margin. Some services flap: after a fix they fail again minutes later,
``--flap-repeats`` times. Runbooks: restart (``auto``), scale out (``approve``: the
simulated approver answers after a few minutes and denies when the named cause is not the
service they see failing), and a ``suggest`` runbook for everything else.

Without automation an incident lasts as long as a person takes (paged at once, lognormal
time to mitigate). With it, an incident a verified action fixed ends when its alerts
resolve after the action; otherwise the person's time stands (they were paged anyway).
``wrong_actions_executed`` counts executions on a service that was not the true cause or
of an action that does not fit the fault; ``loops_stopped`` counts flapping runs stopped
by the breaker or cooldown before running away; ``unapproved_executions`` must be 0.
Every ``--injection-every``-th incident (and its flaps) carries shell, template and path
payloads in the labels its event carries (``common_labels``, where instance names are
looked for); ``injections_reaching_executor`` counts calls whose target, parameters or ids
contain one (must be 0).
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from pipeline.adapters.remediation.memory_state import MemoryRemediationState
from pipeline.domain.remediation.actions import ActionKind
from pipeline.domain.remediation.audit import AuditKind, AuditRecord
from pipeline.domain.remediation.engine import Engine, EngineSettings
from pipeline.domain.remediation.guards import Approval, BreakerSettings, Decision
from pipeline.domain.remediation.ports import ExecContext, ExecResult
from pipeline.domain.remediation.runbook import Runbook, runbook_from_dict
from pipeline.domain.remediation.success import SuccessModel
from pipeline.domain.remediation.targets import Inventory, Target, inventory_from_dict
from pipeline.domain.schemas import (
    AlertCount,
    Incident,
    IncidentStatus,
    RootCauseCandidate,
    Severity,
)
from pipeline.domain.topology import Topology

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGY = ROOT / "topologies" / "online-boutique.yaml"
FIX_FOR = {"crash": ActionKind.process_restart, "overload": ActionKind.kubernetes_scale}
ALERT_FOR = {"crash": "ProcessDown", "overload": "HighLatencyP99", "other": "ErrorRateHigh"}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
BREAKER_WINDOW_S = 3600.0
#: alert text an attacker controls, on the labels that name instances (and one more)
HOSTILE = {
    "instance": "$(touch /tmp/stormwatch-pwned)",
    "pod": "`reboot`",
    "process": "cartservice-0; rm -rf /",
    "program": "../../../etc/passwd",
    "summary": "{{ 7*7 }} ${HOME}",
}


def runbooks(cooldown_s: float = 1800.0) -> list[Runbook]:
    return [
        runbook_from_dict(
            {
                "id": "restart-crashed-process",
                "title": "Restart a crashed process",
                "mode": "auto",
                "match": {"alert_names": ["ProcessDown"]},
                "steps": [
                    {
                        "id": "restart",
                        "action": "process.restart",
                        "select": "unhealthy",
                        "verify_s": 180,
                    }
                ],
                "guards": {
                    "min_score": 0.5,
                    "min_margin": 0.1,
                    "min_success_rate": 0.25,
                    "cooldown_s": cooldown_s,
                    "max_share": 0.5,
                    "max_tries": 2,
                },
            }
        ),
        runbook_from_dict(
            {
                "id": "scale-out",
                "title": "Scale out an overloaded service",
                "mode": "approve",
                "approvers": ["oncall"],
                "match": {"alert_names": ["HighLatency*"]},
                "steps": [
                    {
                        "id": "scale",
                        "action": "kubernetes.scale",
                        "params": {"replicas": 6},
                        "verify_s": 600,
                    }
                ],
                "guards": {"min_score": 0.5, "min_margin": 0.1, "cooldown_s": 3600},
            }
        ),
        runbook_from_dict(
            {"id": "investigate", "title": "Investigate", "mode": "suggest", "priority": 1000}
        ),
    ]


@dataclass
class Case:
    id: str
    start: float
    cause: str
    fault: str
    named: str
    score: float
    margin: float
    human_s: float
    flap_of: str | None = None
    hostile: bool = False  # its event carries HOSTILE labels
    fixed_at: float | None = None
    fixed_by: str | None = None


class Crash(Exception):
    """The simulated worker died mid-action."""


@dataclass
class SimExecutor:
    """Fixes a case when the action fits its fault and hits its true cause."""

    cases: dict[str, Case]
    now: list[float]
    rng: random.Random
    executions: list[tuple[str, ActionKind, str]] = field(default_factory=list)
    action_ids: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    on_fix: Callable[[Case], None] = lambda case: None
    crash_rate: float = 0.0
    #: calls (dry runs included) that carried a HOSTILE value anywhere
    injections: int = 0

    def execute(
        self,
        kind: ActionKind,
        target: Target,
        params: dict[str, Any],
        ctx: ExecContext,
        dry_run: bool,
    ) -> ExecResult:
        carried = json.dumps(msgspec.to_builtins([target, params, ctx]), ensure_ascii=False)
        if any(v in carried for v in HOSTILE.values()):
            self.injections += 1
        if dry_run:
            return ExecResult(ok=True, detail="dry run")
        case = self.cases[ctx.incident_id]
        self.executions.append((case.id, kind, target.service))
        self.times.append(self.now[0])
        if (
            target.service == case.cause
            and FIX_FOR.get(case.fault) is kind
            and case.fixed_at is None
        ):
            case.fixed_at = self.now[0] + self.rng.uniform(20, 90)
            case.fixed_by = ctx.action_id
            self.on_fix(case)
        self.action_ids.append(ctx.action_id)
        if self.rng.random() < self.crash_rate:
            raise Crash(ctx.action_id)  # the worker dies before it learns the result
        undo = {"replicas": 2} if kind is ActionKind.kubernetes_scale else {}
        return ExecResult(ok=True, detail="simulated", undo=undo)

    def list_instances(self, kind: ActionKind, target: Target) -> list[str] | None:
        return [f"{target.service}-{i}" for i in range(3)]

    def unhealthy(self, kind: ActionKind, target: Target) -> list[str] | None:
        return [f"{target.service}-0"]


def inventory(services: list[str]) -> Inventory:
    return inventory_from_dict(
        {
            "services": {
                s: {
                    "supervisor": {
                        "url": "http://127.0.0.1:9001/RPC2",
                        "programs": [f"{s}-{i}" for i in range(3)],
                    },
                    "kubernetes": {"namespace": "boutique", "deployment": s},
                }
                for s in services
            }
        }
    )


def make_cases(args: argparse.Namespace, topo: Topology, rng: random.Random) -> list[Case]:
    services = topo.services
    flappers = set(rng.sample(services, args.flapping))
    cases: list[Case] = []
    t = 0.0
    for i in range(args.incidents):
        t += rng.expovariate(1 / args.gap_s)
        cause = rng.choice(services)
        fault = rng.choices(["crash", "overload", "other"], weights=[0.5, 0.25, 0.25])[0]
        right = rng.random() < args.accuracy
        neighbours = sorted(topo.callers(cause) | topo.dependencies(cause)) or services
        named = cause if right else rng.choice([s for s in neighbours if s != cause] or services)
        score = rng.uniform(0.6, 0.95) if right else rng.uniform(0.35, 0.8)
        margin = rng.uniform(0.1, 0.5) if right else rng.uniform(0.0, 0.3)
        human = rng.lognormvariate(7.0, 0.5)  # median ~18 min
        case = Case(f"inc-{i}", t, cause, fault, named, score, margin, human)
        case.hostile = args.injection_every > 0 and i % args.injection_every == 0
        cases.append(case)
        if cause in flappers and fault == "crash":
            flappers.discard(cause)  # each flapping service has one run of repeats
            for k in range(args.flap_repeats):
                t += rng.uniform(300, 900)
                cases.append(
                    Case(
                        f"inc-{i}-flap{k}",
                        t,
                        cause,
                        fault,
                        named,
                        score,
                        margin,
                        rng.lognormvariate(7.0, 0.5),
                        flap_of=case.id,
                        hostile=case.hostile,
                    )
                )
    return cases


def incident(case: Case, firing: bool, now: float) -> Incident:
    cands = [RootCauseCandidate(service=case.named, score=case.score)]
    if case.margin < case.score:
        cands.append(RootCauseCandidate(service="other-candidate", score=case.score - case.margin))
    at = datetime.fromtimestamp(T0.timestamp() + now, UTC)
    return Incident(
        id=case.id,
        status=IncidentStatus.open,
        opened_at=at,
        updated_at=at,
        severity=Severity.critical,
        root_cause=case.named,
        root_cause_candidates=cands,
        alert_counts=[
            AlertCount(
                service=case.named, name=ALERT_FOR[case.fault], count=1, firing=1 if firing else 0
            )
        ],
        common_labels=HOSTILE if case.hostile else {},
    )


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    topo = Topology.load(TOPOLOGY)
    cases = make_cases(args, topo, rng)
    by_id = {c.id: c for c in cases}
    now = [0.0]
    state = MemoryRemediationState(clock=lambda: now[0])
    ex = SimExecutor(by_id, now, rng)
    ex.crash_rate = args.crash_rate
    model = SuccessModel()
    inv = inventory(topo.services)
    settings = EngineSettings(
        breaker=BreakerSettings(
            max_global=args.breaker_global,
            max_per_service=args.breaker_service,
            window_s=BREAKER_WINDOW_S,
        )
    )

    def new_engine() -> Engine:
        """A (re)started worker: same Redis-like state and stored model, nothing else."""
        return Engine(
            runbooks(args.cooldown_s), inv, state, ex, model=model, settings=settings, topology=topo
        )

    engine = new_engine()
    crashes = 0
    # events: (time, order, kind, case id); the executor adds "resolve" events
    events: list[tuple[float, int, str, str]] = []
    for c in cases:
        heapq.heappush(events, (c.start, 1, "open", c.id))
        heapq.heappush(events, (c.start + args.approval_delay_s, 2, "approve", c.id))
    horizon = (cases[-1].start if cases else 0) + 7200
    t = 0.0
    while t <= horizon:
        heapq.heappush(events, (t, 3, "tick", ""))
        t += args.tick_s
    ex.on_fix = lambda case: heapq.heappush(events, (case.fixed_at or 0.0, 0, "resolve", case.id))
    while events:
        t, _, kind, cid = heapq.heappop(events)
        now[0] = t
        try:
            step(engine, state, by_id, kind, cid, t)
        except Crash:
            crashes += 1
            engine = new_engine()
            heapq.heappush(events, (t, 1, kind, cid))  # the message is read again
    records = list(state.records)
    fig = figures(args, cases, records, ex, engine)
    fig["worker_crashes"] = crashes
    return fig


def step(
    engine: Engine,
    state: MemoryRemediationState,
    by_id: dict[str, Case],
    kind: str,
    cid: str,
    t: float,
) -> list[AuditRecord]:
    """One event through the engine (its records also land in ``state.records``)."""
    if kind == "tick":
        return engine.tick(t)
    c = by_id[cid]
    if kind == "open":
        return engine.on_incident(incident(c, True, t), t)
    if kind == "resolve":
        return engine.on_incident(incident(c, False, t), t)
    if kind == "approve" and c.fixed_at is None:
        facts = state.facts(cid)
        rb = engine.runbook_for(facts) if facts is not None else None
        if rb is not None and rb.mode == "approve":
            decision = Decision.approve if c.named == c.cause else Decision.deny
            return engine.on_approval(cid, rb.id, Approval(user="oncall", decision=decision, at=t))
    return []


def figures(
    args: argparse.Namespace,
    cases: list[Case],
    records: list[AuditRecord],
    ex: SimExecutor,
    engine: Engine,
) -> dict[str, Any]:
    with_auto = [
        (c.fixed_at - c.start)
        if c.fixed_at is not None and c.fixed_at - c.start < c.human_s
        else c.human_s
        for c in cases
    ]
    without = [c.human_s for c in cases]
    wrong = sum(
        1
        for cid, kind, service in ex.executions
        if service != ex.cases[cid].cause or FIX_FOR.get(ex.cases[cid].fault) is not kind
    )
    approvals = {(r.incident_id, r.runbook_id) for r in records if r.kind is AuditKind.approved}
    unapproved = sum(
        1
        for r in records
        if r.kind is AuditKind.executed
        and r.runbook_id == "scale-out"
        and (r.incident_id, r.runbook_id) not in approvals
    )
    refused = Counter(r.guard for r in records if r.kind is AuditKind.refused)
    pages = sum(1 for r in records if r.kind is AuditKind.escalated)
    runs: dict[str, list[Case]] = {}
    for c in cases:
        runs.setdefault(c.flap_of or c.id, []).append(c)
    flapping = [run for run in runs.values() if len(run) > 1]
    limit = args.breaker_service

    def runaway_run(run: list[Case]) -> bool:
        """More restarts in some breaker window than the breaker allows."""
        ids = {c.id for c in run}
        times = sorted(
            t for (cid, _, _), t in zip(ex.executions, ex.times, strict=True) if cid in ids
        )
        return any(sum(1 for u in times if t <= u < t + BREAKER_WINDOW_S) > limit for t in times)

    def stopped(run: list[Case]) -> bool:
        ids = {c.id for c in run}
        return any(
            r.incident_id in ids
            and r.kind is AuditKind.refused
            and r.guard in ("breaker", "cooldown")
            for r in records
        )

    loops_stopped = sum(1 for run in flapping if stopped(run) and not runaway_run(run))
    runaway = sum(1 for run in flapping if runaway_run(run))
    return {
        "seed": args.seed,
        "incidents": len(cases),
        "auto_fixed": sum(1 for c in cases if c.fixed_at is not None),
        "mttr_with_s": round(statistics.mean(with_auto), 1),
        "mttr_without_s": round(statistics.mean(without), 1),
        "actions_executed": len(ex.executions),
        "wrong_actions_executed": wrong,
        "duplicate_executions": sum(n - 1 for n in Counter(ex.action_ids).values() if n > 1),
        "unapproved_executions": unapproved,
        "injection_cases": sum(1 for c in cases if c.hostile),
        "injections_reaching_executor": ex.injections,
        "refused_by_guard": dict(sorted(refused.items())),
        "pages": pages,
        "flapping_runs": len(flapping),
        "loops_stopped": loops_stopped,
        "runaway_loops": runaway,
        "success_rates": {
            f"{r}/{k}": round(b.alpha / (b.alpha + b.beta), 3)
            for (r, k), b in sorted(engine.model._beta.items())
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.remediation", description=__doc__)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--incidents", type=int, default=400)
    ap.add_argument("--gap-s", type=float, default=900.0, help="mean time between incidents")
    ap.add_argument("--accuracy", type=float, default=0.8, help="share of right root causes")
    ap.add_argument("--flapping", type=int, default=3, help="services that flap")
    ap.add_argument("--flap-repeats", type=int, default=6, help="failures after each fix")
    ap.add_argument("--approval-delay-s", type=float, default=240.0)
    ap.add_argument("--cooldown-s", type=float, default=1800.0, help="restart runbook cooldown")
    ap.add_argument("--crash-rate", type=float, default=0.05, help="worker deaths per action")
    ap.add_argument("--tick-s", type=float, default=15.0, help="verification timer period")
    ap.add_argument("--breaker-global", type=int, default=10)
    ap.add_argument("--breaker-service", type=int, default=3)
    ap.add_argument(
        "--injection-every", type=int, default=5, help="every n-th incident carries payloads"
    )
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    fig = simulate(args)
    for key, value in fig.items():
        if key != "success_rates":
            print(f"{key:>28}: {value}")
    if args.json:
        args.json.write_text(json.dumps(fig, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
