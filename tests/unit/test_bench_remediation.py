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
