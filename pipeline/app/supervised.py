"""A local supervisord (the ``supervisor`` package, a dev dependency) for ``stormwatch dev``
and the tests: started on a free port with the programs given, its logs in a directory."""

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

#: a managed service that runs until it is killed
SLEEPER = f"{sys.executable} -c 'import time; time.sleep(86400)'"


class SupervisordError(RuntimeError):
    """supervisord is missing or did not start; the message says why."""


def supervisord_binary() -> str | None:
    here = Path(sys.executable).parent / "supervisord"
    return str(here) if here.exists() else shutil.which("supervisord")


@dataclass
class Supervisord:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    #: (username, password) of its ``inet_http_server``, when it asks for them
    auth: tuple[str, str] | None = None

    @property
    def rpc(self) -> Any:
        return proxy(self.url, 10.0, self.auth)

    def info(self, name: str) -> dict[str, Any]:
        info: dict[str, Any] = self.rpc.supervisor.getProcessInfo(name)
        return info

    def kill(self, name: str, timeout_s: float = 10.0) -> None:
        """Kill the program's process behind supervisord's back (a crash)."""
        os.kill(self.info(name)["pid"], signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        while self.info(name)["statename"] == "RUNNING":
            if time.monotonic() > deadline:
                raise SupervisordError(f"{name} did not exit after SIGKILL")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.rpc.supervisor.shutdown()
                self.proc.wait(timeout=15)
            except (OSError, xmlrpc.client.Error, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


def start_supervisord(
    workdir: Path, programs: dict[str, str], auth: tuple[str, str] | None = None
) -> Supervisord:
    """supervisord on 127.0.0.1:<free port> running ``programs`` (name -> command line)
    without auto-restart, so a killed program stays down until someone restarts it; its
    XML-RPC API asks for ``auth`` (username, password) when given."""
    binary = supervisord_binary()
    if binary is None:
        raise SupervisordError("supervisord is missing: install the supervisor package")
    port = free_port()
    conf = workdir / "supervisord.conf"
    sections = [
        "[supervisord]",
        f"logfile={workdir / 'supervisord.log'}",
        f"pidfile={workdir / 'supervisord.pid'}",
        f"childlogdir={workdir}",
        "nodaemon=true",
        "user=root" if os.geteuid() == 0 else "",
        "[inet_http_server]",
        f"port=127.0.0.1:{port}",
        *([f"username={auth[0]}", f"password={auth[1]}"] if auth else []),
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
    conf.chmod(0o600)  # it may hold the password
    log = workdir / "supervisord.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sup = Supervisord(url=f"http://127.0.0.1:{port}/RPC2", proc=proc, log=log, auth=auth)
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
            raise SupervisordError(f"supervisord did not start: {log.read_text()[-500:]}")
        time.sleep(0.1)
