"""``command``: a fixed program run with ``subprocess``, never through a shell.

The argv comes from the runbook as written; values (service, instance, ids) are appended
as separate arguments or set as environment variables, each exactly one element, so no
character in them is ever interpreted (the lesson of argo-workflows #12534 and rundeck
#1762). The child gets a minimal environment (``PATH`` and the declared variables), not
the worker's, so the worker's secrets do not leak into it.
"""

from __future__ import annotations

import subprocess
from typing import Any

from pipeline.domain.remediation.audit import scrub
from pipeline.domain.remediation.ports import ExecContext, ExecResult
from pipeline.domain.remediation.targets import Target

BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8"}


def values(target: Target, ctx: ExecContext) -> dict[str, str]:
    """What ``args`` and ``env`` may refer to (:data:`~.actions.COMMAND_FIELDS`)."""
    return {
        "service": target.service,
        "instance": target.selected[0] if target.selected else target.service,
        "incident_id": ctx.incident_id,
        "runbook_id": ctx.runbook_id,
        "step_id": ctx.step_id,
    }


def command_line(
    params: dict[str, Any], target: Target, ctx: ExecContext
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of a ``command`` action (refuses option-like values)."""
    vals = values(target, ctx)
    extra = [vals[name] for name in params.get("args", [])]
    for value in extra:
        if value.startswith("-") or "\x00" in value:
            raise ValueError(f"refusing argument {value!r}: it could be read as an option")
    env = {**BASE_ENV, **{name: vals[src] for name, src in params.get("env", {}).items()}}
    return [*params["argv"], *extra], env


class CommandExecutor:
    def execute(
        self, target: Target, params: dict[str, Any], ctx: ExecContext, dry_run: bool
    ) -> ExecResult:
        if dry_run:
            return ExecResult(ok=True, unsupported=True)
        try:
            argv, env = command_line(params, target, ctx)
        except ValueError as exc:
            return ExecResult(ok=False, detail=str(exc))
        try:
            proc = subprocess.run(
                argv,
                shell=False,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=float(params.get("timeout_s", 30.0)),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ExecResult(ok=False, detail=f"timed out after {params.get('timeout_s')} s")
        except OSError as exc:
            return ExecResult(ok=False, detail=f"could not start {argv[0]}: {exc.strerror}")
        out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        return ExecResult(
            ok=proc.returncode == 0, detail=scrub(f"exit {proc.returncode}: {out}", [])
        )
