"""``http.webhook``: hand a job to Rundeck, StackStorm, Argo Events or any HTTP endpoint.

The body is JSON built here from ids and the resolved target plus the runbook's fixed
``payload``; nothing is templated. ``Idempotency-Key`` is the action id, so a receiver can
drop a repeat. The bearer token is read at call time (:mod:`.secrets`) and scrubbed from
whatever the receiver answers.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from pipeline.adapters.remediation.secrets import SecretError, read_secret
from pipeline.domain.remediation.audit import scrub
from pipeline.domain.remediation.ports import ExecContext, ExecResult
from pipeline.domain.remediation.targets import Target


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: following it would send the token to another address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def body(target: Target, params: dict[str, Any], ctx: ExecContext) -> dict[str, Any]:
    return {
        "incident_id": ctx.incident_id,
        "runbook_id": ctx.runbook_id,
        "step_id": ctx.step_id,
        "action_id": ctx.action_id,
        "service": target.service,
        "instances": list(target.selected),
        "payload": params.get("payload", {}),
    }


class WebhookExecutor:
    def execute(
        self, target: Target, params: dict[str, Any], ctx: ExecContext, dry_run: bool
    ) -> ExecResult:
        if dry_run:
            return ExecResult(ok=True, unsupported=True)
        try:
            token = read_secret(params)
        except SecretError as exc:
            return ExecResult(ok=False, detail=str(exc))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": ctx.action_id,
            "User-Agent": "stormwatch-remediation",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            params["url"],
            data=json.dumps(body(target, params, ctx)).encode(),
            headers=headers,
            method=params.get("method", "POST"),
        )
        secrets = [token] if token else []
        try:
            with _opener.open(req, timeout=float(params.get("timeout_s", 30.0))) as resp:
                text = resp.read(2000).decode("utf-8", "replace")
                return ExecResult(ok=True, detail=scrub(f"HTTP {resp.status}: {text}", secrets))
        except urllib.error.HTTPError as exc:
            text = exc.read(2000).decode("utf-8", "replace")
            return ExecResult(ok=False, detail=scrub(f"HTTP {exc.code}: {text}", secrets))
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return ExecResult(ok=False, detail=scrub(f"request failed: {reason}", secrets))
