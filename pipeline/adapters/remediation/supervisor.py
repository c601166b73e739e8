"""``process.restart`` and ``process.status`` through supervisord's XML-RPC API.

Only the standard ``supervisor`` namespace is used (``getProcessInfo``, ``stopProcess``,
``startProcess``), on the URL and program names the inventory gives. A restart of a process
that is not running (exited, fatal, backoff) is a start.
"""

from __future__ import annotations

import http.client
import xmlrpc.client
from typing import Any

from pipeline.domain.remediation.actions import ActionKind
from pipeline.domain.remediation.ports import ExecResult
from pipeline.domain.remediation.targets import Target

#: supervisord states from which a restart stops the process first
RUNNING_STATES = frozenset({"RUNNING", "STARTING"})
#: supervisord fault codes (supervisor.xmlrpc.Faults)
BAD_NAME, ALREADY_STARTED, NOT_RUNNING = 10, 60, 70


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


def proxy(url: str, timeout: float) -> Any:
    """An XML-RPC proxy on a supervisord ``/RPC2`` URL (http only: supervisord speaks no TLS)."""
    return xmlrpc.client.ServerProxy(url, transport=_TimeoutTransport(timeout), allow_none=True)


class SupervisorExecutor:
    def execute(
        self, kind: ActionKind, target: Target, params: dict[str, Any], dry_run: bool
    ) -> ExecResult:
        rpc = proxy(target.locator, float(params.get("timeout_s", 30.0)))
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
    rpc = proxy(target.locator, timeout_s)
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
