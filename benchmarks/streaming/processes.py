"""Processes of the streaming bench: one pipeline deployment (:class:`Tenant`: its topics,
Redis prefix and worker processes), a fresh broker per measurement, stopping a process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from benchmarks import ROOT
from benchmarks.streaming.kafka import create_topics, drop_topics
from benchmarks.streaming.memory import rss_of
from benchmarks.streaming.metrics import processed, scrape
from pipeline.app.localstack import Service, free_port, start_broker, worker_env, worker_healthy


def kill(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started in a session of its own, and its group: SIGTERM, then SIGKILL
    after 15 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


@dataclass
class Tenant:
    """One isolated pipeline deployment: app id, topics, Redis prefix, worker processes."""

    bootstrap: str
    redis_url: str
    topology: Path
    partitions: int
    rebalance_timeout_s: float = 3.0
    #: correlation domains the topology is split into (``worker.domains``)
    domains: int = 1
    #: worker settings for every worker of the tenant (``STORMWATCH_WORKER__<NAME>``)
    worker: dict[str, str] = field(default_factory=dict)
    ns: str = field(default_factory=lambda: f"bench{uuid.uuid4().hex[:6]}")
    workers: list[tuple[subprocess.Popen[bytes], int]] = field(default_factory=list)
    counting: list[bool] = field(default_factory=list)  # per worker: runs the correlate role

    def topic(self, name: str) -> str:
        return f"{self.ns}.{name}"

    def env(self, web_port: int, roles: str | None = None) -> dict[str, str]:
        extra = {**self.worker, **({"roles": roles} if roles else {})}
        if self.domains > 1:
            extra["domains"] = str(self.domains)
        return worker_env(
            bootstrap=self.bootstrap,
            redis_url=self.redis_url,
            topology=self.topology,
            web_port=web_port,
            ns=self.ns,
            partitions=self.partitions,
            rebalance_timeout_s=str(self.rebalance_timeout_s),
            **extra,
        )

    def topic_names(self) -> list[str]:
        names = [
            self.topic(n)
            for n in ("alerts.raw", "metrics.raw", "alerts.dlq", "incidents", "feedback")
        ]
        return [*names, self.topic("remediations"), f"{self.ns}-alerts-by-domain", self.merge_topic]

    @property
    def merge_topic(self) -> str:
        return f"{self.ns}-incidents-by-domain"

    def create_topics(self) -> None:
        names = [n for n in self.topic_names() if n != self.merge_topic]
        create_topics(self.bootstrap, names, self.partitions)
        create_topics(self.bootstrap, [self.merge_topic], 1)  # one merge stage

    def start_workers(self, n: int, roles: Sequence[str] | None = None) -> None:
        """``n`` workers with every role, or one process per entry of ``roles``."""
        for i in range(len(roles) if roles else n):
            port = free_port()
            self.workers.append((self._spawn(port, roles[i] if roles else None), port))
            self.counting.append(not roles or "correlate" in roles[i])
        deadline = time.monotonic() + 90
        for proc, port in self.workers:
            while not worker_healthy(port):
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited ({proc.returncode}) at start-up")
                if time.monotonic() > deadline:
                    raise RuntimeError("worker not healthy after 90 s")
                time.sleep(0.2)

    def _spawn(self, port: int, roles: str | None = None) -> subprocess.Popen[bytes]:
        """A worker process of this tenant on ``port``, in a session of its own."""
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline", "worker"],
            env=self.env(port, roles),
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
        )

    def restart(self, i: int) -> None:
        """Start worker ``i`` again (same port and roles), as an orchestrator would after it
        exited; waits until it is healthy."""
        _, port = self.workers[i]
        new = self._spawn(port)
        self.workers[i] = (new, port)
        deadline = time.monotonic() + 90
        while not worker_healthy(port):
            if new.poll() is not None or time.monotonic() > deadline:
                return  # the caller sees it exit again
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the workers and delete the tenant's topics (see :func:`drop_topics`)."""
        for proc, _ in self.workers:
            kill(proc)
        self.workers.clear()
        self.counting.clear()
        drop_topics(self.bootstrap, self.topic_names())

    def counts(self) -> list[float]:
        """Alerts each correlating worker has deduplicated (ingest-only processes count none
        and are left out)."""
        return [processed(samples) for samples in self.samples()]

    def samples(self) -> list[list[tuple[str, dict[str, str], float]]]:
        """The metric samples of each correlating worker."""
        return [
            scrape(port)
            for (_, port), counts in zip(self.workers, self.counting, strict=True)
            if counts
        ]

    def rss(self) -> list[int]:
        """RSS of each worker process (samples of a run's memory)."""
        return rss_of([proc.pid for proc, _ in self.workers])


@contextmanager
def fresh_broker(workdir: Path, name: str) -> Iterator[tuple[Service, list[float]]]:
    """A Tansu broker of its own for one measurement. Tansu's memory storage gets slower as it
    holds more record batches (its CPU climbs within a minute of paced production, so a
    measurement's tail depends on what ran before it); a fresh broker gives each latency
    measurement the same start. Yields the broker and a list that receives the CPU cores
    the broker used while the block ran."""
    broker = start_broker(log_path=workdir / f"tansu-{name}.log")
    cores: list[float] = []
    proc = psutil.Process(broker.proc.pid)
    cpu0, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
    try:
        yield broker, cores
    finally:
        cores.append((sum(proc.cpu_times()[:2]) - cpu0) / max(time.monotonic() - t0, 1e-9))
        broker.stop()
