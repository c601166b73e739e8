"""Kubernetes actions against the official client's contract: the real ``kubernetes``
client talks HTTP to a local server that records each request and answers as the API
server would (no API server can be installed here). Checked: request shape (method, path,
patch body, content type), ``dryRun=All`` before every real call, no real call after a
refused dry run, and the scale rollback's old replica count."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client as k8s

from pipeline.adapters.remediation.executor import Executors
from pipeline.adapters.remediation.kubernetes import RESTARTED_AT, KubernetesExecutor
from pipeline.domain.remediation.actions import ActionKind
from pipeline.domain.remediation.ports import ExecContext
from pipeline.domain.remediation.targets import Target


class FakeApiServer(ThreadingHTTPServer):
    requests: list[dict[str, Any]]
    refuse_dry_run: bool = False


class Handler(BaseHTTPRequestHandler):
    server: FakeApiServer

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = parse_qs(url.query)
        self.server.requests.append(
            {
                "method": self.command,
                "path": url.path,
                "query": query,
                "body": json.loads(raw) if raw else None,
                "content_type": self.headers.get("Content-Type"),
            }
        )
        if self.server.refuse_dry_run and query.get("dryRun") == ["All"]:
            return self._send(403, {"kind": "Status", "reason": "Forbidden", "code": 403})
        meta = {"name": url.path.rsplit("/", 1)[-1], "namespace": "shop"}
        if url.path.endswith("/scale"):
            replicas = 2
            if self.command == "PATCH" and raw:
                replicas = json.loads(raw)["spec"]["replicas"]
            return self._send(
                200,
                {
                    "kind": "Scale",
                    "apiVersion": "autoscaling/v1",
                    "metadata": {"name": "frontend", "namespace": "shop"},
                    "spec": {"replicas": replicas},
                },
            )
        if url.path.endswith("/pods"):
            items = [{"metadata": {"name": n}} for n in ("frontend-b", "frontend-a")]
            return self._send(200, {"kind": "PodList", "apiVersion": "v1", "items": items})
        if "/pods/" in url.path:
            return self._send(200, {"kind": "Pod", "apiVersion": "v1", "metadata": meta})
        labels = {"app": "frontend"}
        spec = {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}}
        return self._send(200, {"kind": "Deployment", "metadata": meta, "spec": spec})

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_DELETE = _answer


@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    server = FakeApiServer(("127.0.0.1", 0), Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def executor(apiserver: FakeApiServer) -> KubernetesExecutor:
    cfg = k8s.Configuration()
    cfg.host = f"http://127.0.0.1:{apiserver.server_address[1]}"
    return KubernetesExecutor(k8s.ApiClient(cfg), now=lambda: "2026-01-01T00:00:00Z")


DEPLOY = Target(
    service="frontend",
    kind="kubernetes.scale",
    locator="shop/frontend",
    selector="app=frontend",
    instances=("frontend-a", "frontend-b"),
    selected=("frontend-a",),
)


def calls(server: FakeApiServer) -> list[tuple[str, str, list[str] | None]]:
    return [(r["method"], r["path"], r["query"].get("dryRun")) for r in server.requests]


def test_rollout_restart_patches_the_template_after_a_dry_run(
    apiserver: FakeApiServer, executor: KubernetesExecutor
) -> None:
    res = executor.execute(ActionKind.kubernetes_rollout_restart, DEPLOY, {}, dry_run=False)
    assert res.ok
    path = "/apis/apps/v1/namespaces/shop/deployments/frontend"
    assert calls(apiserver) == [("PATCH", path, ["All"]), ("PATCH", path, None)]
    body = apiserver.requests[1]["body"]
    assert body == {
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "2026-01-01T00:00:00Z"}}}}
    }
    assert apiserver.requests[1]["content_type"] == "application/strategic-merge-patch+json"


def test_scale_reports_the_old_replicas_for_the_rollback(
    apiserver: FakeApiServer, executor: KubernetesExecutor
) -> None:
    res = executor.execute(ActionKind.kubernetes_scale, DEPLOY, {"replicas": 6}, dry_run=False)
    assert res.ok and res.undo == {"replicas": 2}
    path = "/apis/apps/v1/namespaces/shop/deployments/frontend/scale"
    assert calls(apiserver) == [
        ("GET", path, None),
        ("PATCH", path, ["All"]),
        ("PATCH", path, None),
    ]
    assert apiserver.requests[2]["body"] == {"spec": {"replicas": 6}}


def test_dry_run_only_sends_nothing_real(
    apiserver: FakeApiServer, executor: KubernetesExecutor
) -> None:
    res = executor.execute(ActionKind.kubernetes_scale, DEPLOY, {"replicas": 6}, dry_run=True)
    assert res.ok and res.undo == {}
    assert [c[2] for c in calls(apiserver) if c[0] == "PATCH"] == [["All"]]


def test_delete_pod_dry_runs_every_pod_first(
    apiserver: FakeApiServer, executor: KubernetesExecutor
) -> None:
    two = Target(
        service="frontend",
        kind="kubernetes.delete_pod",
        locator="shop/frontend",
        instances=("frontend-a", "frontend-b", "frontend-c"),
        selected=("frontend-a", "frontend-b"),
    )
    res = executor.execute(
        ActionKind.kubernetes_delete_pod, two, {"grace_period_s": 5}, dry_run=False
    )
    assert res.ok
    pods = "/api/v1/namespaces/shop/pods/"
    assert calls(apiserver) == [
        ("DELETE", pods + "frontend-a", ["All"]),
        ("DELETE", pods + "frontend-b", ["All"]),
        ("DELETE", pods + "frontend-a", None),
        ("DELETE", pods + "frontend-b", None),
    ]
    assert all(r["query"]["gracePeriodSeconds"] == ["5"] for r in apiserver.requests)


def test_a_refused_dry_run_stops_the_real_call(
    apiserver: FakeApiServer, executor: KubernetesExecutor
) -> None:
    apiserver.refuse_dry_run = True
    res = executor.execute(ActionKind.kubernetes_scale, DEPLOY, {"replicas": 6}, dry_run=False)
    assert not res.ok and "403" in res.detail
    assert [c for c in calls(apiserver) if c[0] == "PATCH"] == [
        ("PATCH", "/apis/apps/v1/namespaces/shop/deployments/frontend/scale", ["All"])
    ]
    res = executor.execute(ActionKind.kubernetes_delete_pod, DEPLOY, {}, dry_run=False)
    assert not res.ok
    assert [c[2] for c in calls(apiserver) if c[0] == "DELETE"] == [["All"]]


def test_pods_are_listed_by_the_inventory_selector(
    apiserver: FakeApiServer, executor: KubernetesExecutor
) -> None:
    assert executor.list_pods(DEPLOY) == ["frontend-a", "frontend-b"]
    assert apiserver.requests[0]["query"]["labelSelector"] == ["app=frontend"]
    ex = Executors(kubernetes=executor)
    assert ex.list_instances(ActionKind.kubernetes_delete_pod, DEPLOY) == [
        "frontend-a",
        "frontend-b",
    ]
    ctx = ExecContext(incident_id="i", runbook_id="r", step_id="s", action_id="a")
    none = Executors().execute(ActionKind.kubernetes_scale, DEPLOY, {"replicas": 2}, ctx, False)
    assert not none.ok and "no Kubernetes cluster" in none.detail
