"""The remediation benchmark runs, is seeded, and meets the issue's targets on a small run."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.remediation import main


def test_small_run_meets_the_targets(tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    args = ["--incidents", "60", "--flapping", "2", "--cooldown-s", "0", "--crash-rate", "0.2"]
    assert main([*args, "--json", str(out)]) == 0
    fig = json.loads(out.read_text())
    assert fig["auto_fixed"] > 0 and fig["mttr_with_s"] < fig["mttr_without_s"]
    assert fig["unapproved_executions"] == 0
    assert fig["injection_cases"] > 0 and fig["injections_reaching_executor"] == 0
    assert fig["duplicate_executions"] == 0 and fig["worker_crashes"] > 0
    assert fig["runaway_loops"] == 0 and fig["loops_stopped"] == fig["flapping_runs"] > 0
    for key in (
        "auto_fixed",
        "mttr_with_s",
        "mttr_without_s",
        "wrong_actions_executed",
        "loops_stopped",
    ):
        assert key in fig
    again = tmp_path / "b.json"
    main([*args, "--json", str(again)])
    assert json.loads(again.read_text()) == fig


def test_the_injection_count_sees_a_payload_in_any_part_of_a_call() -> None:
    import random

    from benchmarks.remediation import HOSTILE, Case, SimExecutor
    from pipeline.domain.remediation.actions import ActionKind
    from pipeline.domain.remediation.ports import ExecContext
    from pipeline.domain.remediation.targets import Target

    case = Case("inc-0", 0.0, "cartservice", "crash", "cartservice", 0.9, 0.5, 600.0)
    ex = SimExecutor({"inc-0": case}, [0.0], random.Random(1))
    ctx = ExecContext(incident_id="inc-0", runbook_id="r", step_id="s", action_id="a")
    clean = Target(service="cartservice", kind="process.restart", selected=("cartservice-0",))
    ex.execute(ActionKind.process_restart, clean, {}, ctx, dry_run=True)
    assert ex.injections == 0
    for value in HOSTILE.values():
        bad = Target(service="cartservice", kind="process.restart", selected=(value,))
        ex.execute(ActionKind.process_restart, bad, {}, ctx, dry_run=True)
    ex.execute(ActionKind.command, clean, {"args": [HOSTILE["pod"]]}, ctx, dry_run=True)
    assert ex.injections == len(HOSTILE) + 1
