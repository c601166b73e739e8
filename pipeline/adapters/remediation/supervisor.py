"""``process.restart`` and ``process.status`` through supervisord's XML-RPC API.

Only the standard ``supervisor`` namespace is used (``getProcessInfo``, ``stopProcess``,
``startProcess``), on the URL and program names the inventory gives. A restart of a process
that is not running (exited, fatal, backoff) is a start. When the inventory references a
username and password (``*_env`` / ``*_file``), they are read at call time and sent as HTTP
Basic authentication in a header, never in the URL (which errors and records show), and
scrubbed from every result.
"""

from __future__ import annotations

import base64
import http.client
import xmlrpc.client
from typing import Any

import msgspec

from pipeline.adapters.remediation.secrets import SecretError, read_secret
from pipeline.domain.remediation.actions import ActionKind
from pipeline.domain.remediation.audit import scrub
from pipeline.domain.remediation.ports import ExecResult
from pipeline.domain.remediation.targets import Target

#: supervisord states from which a restart stops the process first
RUNNING_STATES = frozenset({"RUNNING", "STARTING"})
#: supervisord fault codes (supervisor.xmlrpc.Faults)
BAD_NAME, ALREADY_STARTED, NOT_RUNNING = 10, 60, 70


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout: float, auth: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.timeout = timeout
        self._auth = auth

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn

    def send_headers(self, connection: Any, headers: Any) -> None:
        if self._auth is not None:
            token = base64.b64encode(":".join(self._auth).encode()).decode()
            headers = [*headers, ("Authorization", f"Basic {token}")]
        super().send_headers(connection, headers)


def proxy(url: str, timeout: float, auth: tuple[str, str] | None = None) -> Any:
    """An XML-RPC proxy on a supervisord ``/RPC2`` URL (http only: supervisord speaks no TLS),
    with HTTP Basic ``auth`` (username, password) when given."""
    transport = _TimeoutTransport(timeout, auth)
    return xmlrpc.client.ServerProxy(url, transport=transport, allow_none=True)


def credentials(target: Target) -> tuple[str, str] | None:
    """The (username, password) the target's references name, read now; None without
    references. :class:`SecretError` names a missing reference, never a value."""
    refs = target.secret_refs
    if not refs:
        return None
    user = read_secret(refs, name="username")
    password = read_secret(refs, name="password")
    if user is None or password is None:
        raise SecretError("supervisord credentials need both a username and a password")
    return user, password


class SupervisorExecutor:
    def execute(
        self, kind: ActionKind, target: Target, params: dict[str, Any], dry_run: bool
    ) -> ExecResult:
        try:
            auth = credentials(target)
        except SecretError as exc:
            return ExecResult(ok=False, detail=str(exc))
        try:
            result = self._execute(kind, target, params, dry_run, auth)
        except (OSError, xmlrpc.client.Error) as exc:  # unreachable, refused (e.g. HTTP 401)
            result = ExecResult(ok=False, detail=f"{type(exc).__name__}: {exc}")
        return msgspec.structs.replace(result, detail=scrub(result.detail, list(auth or ())))

    def _execute(
        self,
        kind: ActionKind,
        target: Target,
        params: dict[str, Any],
        dry_run: bool,
        auth: tuple[str, str] | None,
    ) -> ExecResult:
        rpc = proxy(target.locator, float(params.get("timeout_s", 30.0)), auth)
        infos = {}
        for name in target.selected:
            try:
                infos[name] = rpc.supervisor.getProcessInfo(name)
            except xmlrpc.client.Fault as exc:
                return ExecResult(ok=False, detail=f"{name}: supervisord fault {exc.faultString}")
        if kind is ActionKind.process_status or dry_run:
            return ExecResult(ok=True, detail=describe(infos))
        if kind is not ActionKind.process_restart:
            raise ValueError(f"the supervisor executor cannot run {kind}")
        done = []
        for name, info in infos.items():
            try:
                if info["statename"] in RUNNING_STATES:
                    rpc.supervisor.stopProcess(name, True)
                rpc.supervisor.startProcess(name, True)
            except xmlrpc.client.Fault as exc:
                if exc.faultCode != ALREADY_STARTED:
                    return ExecResult(
                        ok=False, detail=f"{name}: supervisord fault {exc.faultString}"
                    )
            after = rpc.supervisor.getProcessInfo(name)
            done.append(f"{name}: {info['statename']} -> {after['statename']} (pid {after['pid']})")
        return ExecResult(ok=True, detail="; ".join(done))


def not_running(target: Target, timeout_s: float = 10.0) -> list[str]:
    """The target's programs that supervisord reports neither running nor starting."""
    rpc = proxy(target.locator, timeout_s, credentials(target))
    out = []
    for name in target.instances:
        try:
            if rpc.supervisor.getProcessInfo(name)["statename"] not in RUNNING_STATES:
                out.append(name)
        except xmlrpc.client.Fault:
            continue
    return out


def describe(infos: dict[str, dict[str, Any]]) -> str:
    return "; ".join(
        f"{name}: {i['statename']} pid {i['pid']} ({i.get('description', '')})"
        for name, i in infos.items()
    )
