"""The executor the worker uses: each action kind to its adapter, failures as results."""

from __future__ import annotations

from typing import Any

from pipeline.adapters.remediation.command import CommandExecutor
from pipeline.adapters.remediation.supervisor import SupervisorExecutor, not_running
from pipeline.adapters.remediation.webhook import WebhookExecutor
from pipeline.domain.remediation.actions import CATALOGUE, ActionKind
from pipeline.domain.remediation.ports import ExecContext, ExecResult
from pipeline.domain.remediation.targets import Target


class Executors:
    """Implements :class:`pipeline.domain.remediation.ports.Executor`. ``kubernetes`` is a
    :class:`~.kubernetes.KubernetesExecutor` when a cluster is configured."""

    def __init__(self, kubernetes: Any = None) -> None:
        self.supervisor = SupervisorExecutor()
        self.command = CommandExecutor()
        self.webhook = WebhookExecutor()
        self.kubernetes = kubernetes

    def execute(
        self,
        kind: ActionKind,
        target: Target,
        params: dict[str, Any],
        ctx: ExecContext,
        dry_run: bool,
    ) -> ExecResult:
        try:
            need = CATALOGUE[kind].needs
            if need == "supervisor":
                return self.supervisor.execute(kind, target, params, dry_run)
            if need == "kubernetes":
                if self.kubernetes is None:
                    return ExecResult(ok=False, detail="no Kubernetes cluster is configured")
                result: ExecResult = self.kubernetes.execute(kind, target, params, dry_run)
                return result
            if kind is ActionKind.command:
                return self.command.execute(target, params, ctx, dry_run)
            return self.webhook.execute(target, params, ctx, dry_run)
        except Exception as exc:  # an executor's own failure is a result, never a crash
            return ExecResult(ok=False, detail=f"{type(exc).__name__}: {exc}"[:500])

    def list_instances(self, kind: ActionKind, target: Target) -> list[str] | None:
        if CATALOGUE[kind].needs == "kubernetes" and self.kubernetes is not None:
            try:
                pods: list[str] = self.kubernetes.list_pods(target)
                return pods
            except Exception:
                return None
        return None

    def unhealthy(self, kind: ActionKind, target: Target) -> list[str] | None:
        """supervisord: programs not running; elsewhere unknown (None)."""
        if CATALOGUE[kind].needs == "supervisor":
            try:
                return not_running(target)
            except Exception:
                return None
        return None
