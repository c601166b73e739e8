"""A real supervisord for remediation tests: the ``supervisor`` package pinned as a dev
dependency (pure Python; its ``supervisord`` sits next to the virtualenv's Python), started
on a free port with the programs the test names, its logs in the test's directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.adapters.remediation.supervisor import proxy
from pipeline.app.localstack import free_port

#: a managed service: runs until killed
SLEEPER = f"{sys.executable} -c 'import time; time.sleep(3600)'"


def supervisord_binary() -> str:
    here = Path(sys.executable).parent / "supervisord"
    found = str(here) if here.exists() else shutil.which("supervisord")
    assert found, "supervisord is missing: make .venv/.installed installs the supervisor package"
    return found


@dataclass
class Supervisord:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def rpc(self) -> Any:
        return proxy(self.url, 10.0)

    def info(self, name: str) -> dict[str, Any]:
        info: dict[str, Any] = self.rpc.supervisor.getProcessInfo(name)
        return info

    def kill(self, name: str) -> None:
        """Kill the program's process behind supervisord's back (a crash)."""
        os.kill(self.info(name)["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.info(name)["statename"] == "RUNNING":
            assert time.monotonic() < deadline, f"{name} did not exit after SIGKILL"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.rpc.supervisor.shutdown()
                self.proc.wait(timeout=15)
            except (OSError, xmlrpc.client.Error, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


def start_supervisord(tmp: Path, programs: dict[str, str]) -> Supervisord:
    """supervisord on 127.0.0.1:<free port> running ``programs`` (name -> command line)
    without auto-restart, so a killed program stays down until someone restarts it."""
    port = free_port()
    conf = tmp / "supervisord.conf"
    sections = [
        "[supervisord]",
        f"logfile={tmp / 'supervisord.log'}",
        f"pidfile={tmp / 'supervisord.pid'}",
        f"childlogdir={tmp}",
        "nodaemon=true",
        "user=root" if os.geteuid() == 0 else "",
        "[inet_http_server]",
        f"port=127.0.0.1:{port}",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    ]
    for name, command in programs.items():
        sections += [
            f"[program:{name}]",
            f"command={command}",
            "autostart=true",
            "autorestart=false",
            "startsecs=1",
            "stopwaitsecs=5",
        ]
    conf.write_text("\n".join(s for s in sections if s) + "\n")
    log = tmp / "supervisord.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [supervisord_binary(), "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sup = Supervisord(url=f"http://127.0.0.1:{port}/RPC2", proc=proc, log=log)
    deadline = time.monotonic() + 30
    while True:
        try:
            states = {p["name"]: p["statename"] for p in sup.rpc.supervisor.getAllProcessInfo()}
            if all(states.get(n) == "RUNNING" for n in programs):
                return sup
        except (OSError, xmlrpc.client.Error):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            sup.stop()
            raise AssertionError(f"supervisord did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
