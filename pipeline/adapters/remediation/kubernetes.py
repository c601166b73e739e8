"""Kubernetes actions through the official ``kubernetes`` client, each real call preceded
by the same call with server-side ``dryRun=All`` (admission, quotas and RBAC are checked
without persisting anything); a refused dry run means no real call.

- ``kubernetes.rollout_restart``: patch the Deployment's pod template annotation
  ``kubectl.kubernetes.io/restartedAt`` (what ``kubectl rollout restart`` does).
- ``kubernetes.scale``: patch the Deployment's scale subresource; reports the replicas it
  had, which the rollback restores.
- ``kubernetes.delete_pod``: delete the selected pods (their ReplicaSet replaces them).

The API client is passed in (in-cluster or kubeconfig credentials, read by the client);
tests point it at a local HTTP server that records the requests.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from pipeline.domain.remediation.actions import ActionKind
from pipeline.domain.remediation.ports import ExecResult
from pipeline.domain.remediation.targets import Target

DRY_RUN = "All"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubernetesExecutor:
    def __init__(self, api: k8s.ApiClient, now: Callable[[], str] = _now) -> None:
        self.apps = k8s.AppsV1Api(api)
        self.core = k8s.CoreV1Api(api)
        self.now = now

    def list_pods(self, target: Target) -> list[str]:
        namespace, _ = target.locator.split("/", 1)
        pods = self.core.list_namespaced_pod(namespace, label_selector=target.selector or None)
        return sorted(p.metadata.name for p in pods.items if p.metadata and p.metadata.name)

    def execute(
        self, kind: ActionKind, target: Target, params: dict[str, Any], dry_run: bool
    ) -> ExecResult:
        namespace, deployment = target.locator.split("/", 1)
        timeout = float(params.get("timeout_s", 30.0))
        try:
            if kind is ActionKind.kubernetes_rollout_restart:
                body = {
                    "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: self.now()}}}}
                }
                self._twice(
                    dry_run,
                    lambda d: self.apps.patch_namespaced_deployment(
                        deployment, namespace, body, dry_run=d, _request_timeout=timeout
                    ),
                )
                return ExecResult(ok=True, detail=f"rollout restart of {target.locator}")
            if kind is ActionKind.kubernetes_scale:
                scale = self.apps.read_namespaced_deployment_scale(
                    deployment, namespace, _request_timeout=timeout
                )
                before = scale.spec.replicas if scale.spec else None
                replicas: dict[str, Any] = {"spec": {"replicas": int(params["replicas"])}}
                self._twice(
                    dry_run,
                    lambda d: self.apps.patch_namespaced_deployment_scale(
                        deployment, namespace, replicas, dry_run=d, _request_timeout=timeout
                    ),
                )
                return ExecResult(
                    ok=True,
                    detail=f"{target.locator} replicas {before} -> {params['replicas']}",
                    undo={} if dry_run or before is None else {"replicas": before},
                )
            if kind is ActionKind.kubernetes_delete_pod:
                grace = int(params.get("grace_period_s", 30))
                for pod in target.selected:  # every dry run first, then the real deletions
                    self.core.delete_namespaced_pod(
                        pod,
                        namespace,
                        grace_period_seconds=grace,
                        dry_run=DRY_RUN,
                        _request_timeout=timeout,
                    )
                if not dry_run:
                    for pod in target.selected:
                        self.core.delete_namespaced_pod(
                            pod, namespace, grace_period_seconds=grace, _request_timeout=timeout
                        )
                return ExecResult(ok=True, detail=f"deleted {', '.join(target.selected)}")
        except ApiException as exc:
            return ExecResult(ok=False, detail=f"Kubernetes API {exc.status}: {exc.reason}")
        raise ValueError(f"the Kubernetes executor cannot run {kind}")

    @staticmethod
    def _twice(dry_run: bool, call: Callable[[str | None], Any]) -> None:
        call(DRY_RUN)
        if not dry_run:
            call(None)
