"""Throughput of the real worker(s) on a pre-produced backlog (phase 3 of ``make bench``):
alerts/s, CPU cores per process, RSS samples, Redis commands per alert; and the scaling runs
(1 worker, 2 workers, 1 worker split into 2 processes by role)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

from benchmarks.streaming.console import log
from benchmarks.streaming.kafka import BACKLOG_BATCH, Messages, produce
from benchmarks.streaming.metrics import histogram, processed
from benchmarks.streaming.processes import Tenant
from benchmarks.streaming.speed import SpeedProbe
from benchmarks.streaming.stall import snapshot


@dataclass
class Run:
    """Figures of one run on a backlog (``drive``)."""

    alerts: int
    processed: float
    seconds: float
    rate: float
    finished: bool
    stalled: bool
    peak_rss: list[int]
    rss_samples: list[tuple[float, int]]
    redis_cmds_per_alert: float = 0.0
    top_commands: list[tuple[str, float]] = field(default_factory=list)
    #: CPU cores each process used while the rate was measured (worker(s), broker, redis)
    cores: dict[str, float] = field(default_factory=dict)
    #: times a worker exited during the run (restarted when ``drive(restart=True)``)
    exits: int = 0
    #: (seconds since start, alerts counted, CPU seconds of each process) every ~2 s
    timeline: list[tuple[float, float, dict[str, float]]] = field(default_factory=list)
    #: share of the scrapes (4 a second) in which each worker had a partition paced
    #: (``stormwatch_partitions_paced``: held back only by the other domains)
    paced_share: list[float] = field(default_factory=list)
    #: each worker's metric samples at the end of the run (the last scrape)
    last_samples: list[list[tuple[str, dict[str, str], float]]] = field(default_factory=list)
    #: CPU milliseconds of the speed probe's unit of work during the run, median
    #: (:mod:`benchmarks.streaming.speed`: how fast the shared machine was meanwhile)
    probe_ms: float = float("nan")

    def histogram(self, name: str) -> dict[str, float]:
        """Histogram ``name`` over every worker at the end of the run (count, mean, p50, p90)."""
        return histogram([s for worker in self.last_samples for s in worker], name)

    def quarters(self) -> list[dict[str, Any]]:
        """Rate and CPU cores of each process over each quarter of the alerts: where a run
        slows down as the storm goes on."""
        points = [p for p in self.timeline if p[1] > 0]
        out: list[dict[str, Any]] = []
        if len(points) < 2:
            return out
        total = points[-1][1]
        for q in range(4):
            lo = [p for p in points if p[1] >= q * total / 4]
            hi = [p for p in points if p[1] >= (q + 1) * total / 4]
            if not lo or not hi or hi[0][0] <= lo[0][0]:
                continue
            (t0, n0, c0), (t1, n1, c1) = lo[0], hi[0]
            dt = t1 - t0
            out.append(
                {
                    "quarter": q + 1,
                    "alerts_per_s": (n1 - n0) / dt,
                    "cores": {k: (c1[k] - c0[k]) / dt for k in c0 if k in c1},
                }
            )
        return out


#: the processes of the split worker: one normalizes and routes, one correlates
SPLIT_ROLES = ["ingest,feedback,metrics", "correlate"]


def _cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
            out[name] = t.user + t.system
        except psutil.Error:
            out[name] = float("nan")
    return out


def _redis_stats(r: redis.Redis) -> tuple[int, dict[str, int]]:
    info: Any = r.info("commandstats")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}
    stats: Any = r.info("stats")
    return int(stats["total_commands_processed"]), calls


def drive(
    tenant: Tenant,
    n_workers: int,
    total: int,
    budget_s: float,
    r: redis.Redis | None = None,
    stall_s: float = 30.0,
    services: dict[str, int] | None = None,
    roles: Sequence[str] | None = None,
    restart: bool = False,
) -> Run:
    """Start ``n_workers`` on a pre-produced backlog of ``total`` alerts; measure until done.

    A worker that exits fails the run, or with ``restart`` is started again and counted (the
    alerts it had counted are carried over; what it processes again is counted twice).

    The rate is taken from the moment every worker has processed something (so start-up and
    the initial rebalance are excluded) to the moment the last alert is counted. A run in
    which nothing moves for ``stall_s`` stops early and is marked stalled.
    """
    with SpeedProbe() as probe:
        run = _drive(tenant, n_workers, total, budget_s, r, stall_s, services, roles, restart)
    run.probe_ms = probe.median_ms
    return run


def _drive(
    tenant: Tenant,
    n_workers: int,
    total: int,
    budget_s: float,
    r: redis.Redis | None,
    stall_s: float,
    services: dict[str, int] | None,
    roles: Sequence[str] | None,
    restart: bool,
) -> Run:
    before = _redis_stats(r) if r is not None else None
    tenant.start_workers(n_workers, roles)
    pids = {f"worker {i + 1}": proc.pid for i, (proc, _) in enumerate(tenant.workers)}
    pids.update(services or {})
    cpu0: dict[str, float] = {}
    cpu1: dict[str, float] = {}
    t_start = time.perf_counter()
    t0, c0 = 0.0, 0.0
    peak = [0] * len(tenant.workers)
    rss_samples: list[tuple[float, int]] = []
    done = prev = 0.0
    last_t = t_start
    stalled = False
    exits = 0
    scrapes = 0
    paced = [0] * len(tenant.workers)
    carried = [0.0] * len(tenant.workers)
    last_counts = [0.0] * len(tenant.workers)
    timeline: list[tuple[float, float, dict[str, float]]] = []
    samples: list[list[tuple[str, dict[str, str], float]]] = []
    while True:
        exited = [i for i, (proc, _) in enumerate(tenant.workers) if proc.poll() is not None]
        if exited and not restart:
            code = tenant.workers[exited[0]][0].returncode
            raise RuntimeError(f"worker exited ({code}) during the run")
        for i in exited:
            exits += 1
            carried[i] += last_counts[i]
            last_counts[i] = 0.0
            log(f"[yellow]worker {i + 1} exited; restarting it[/yellow]")
            tenant.restart(i)
            pids[f"worker {i + 1}"] = tenant.workers[i][0].pid
        try:
            samples = tenant.samples()
            counts = [c + k for c, k in zip(map(processed, samples), carried, strict=False)]
        except OSError:  # a worker went away between the check and the scrape
            time.sleep(0.25)
            continue
        last_counts = [c - k for c, k in zip(counts, carried, strict=False)]
        if t0:
            scrapes += 1
            for i, worker_samples in enumerate(samples[: len(paced)]):
                paced[i] += any(
                    v > 0 for name, _, v in worker_samples if name == "stormwatch_partitions_paced"
                )
        now = time.perf_counter()
        done = sum(counts)
        rss = tenant.rss()
        peak = [max(a, b) for a, b in zip(peak, rss, strict=True)]
        rss_samples.append((done, sum(rss)))
        if not t0 and all(c > 0 for c in counts):
            t0, c0 = now, done
            cpu0 = _cpu_seconds(pids)
        if done > prev:
            last_t, prev = now, done
            cpu1 = _cpu_seconds(pids)
            if not timeline or now - t_start - timeline[-1][0] >= 2.0 or done >= total:
                timeline.append((now - t_start, done, cpu1))
        if done >= total:
            break
        if now - t_start > budget_s:
            break
        if done > 0 and now - last_t > stall_s:
            stalled = True
            _watch_stall(tenant, done, stall_s)
            break
        time.sleep(0.25)
    if not t0:  # a worker never got a partition with work: measure the whole run
        t0, c0 = t_start, 0.0
    seconds = max(last_t - t0, 1e-9)
    run = Run(
        alerts=total,
        processed=done,
        seconds=seconds,
        rate=(done - c0) / seconds,
        finished=done >= total,
        stalled=stalled,
        peak_rss=peak,
        rss_samples=rss_samples,
        exits=exits,
        timeline=timeline,
        paced_share=[n / scrapes for n in paced] if scrapes else [],
        last_samples=samples,
    )
    if cpu0 and cpu1 and t0 < last_t:
        run.cores = {k: (cpu1[k] - cpu0[k]) / (last_t - t0) for k in cpu0}
    if r is not None and before is not None:
        after = _redis_stats(r)
        run.redis_cmds_per_alert = (after[0] - before[0]) / max(done, 1)
        deltas = {k: (v - before[1].get(k, 0)) / max(done, 1) for k, v in after[1].items()}
        run.top_commands = sorted(deltas.items(), key=lambda kv: -kv[1])[:5]
    return run


def _watch_stall(tenant: Tenant, done: float, watch_s: float) -> None:
    """Log what the stalled workers wait for, then whether they move again within
    ``watch_s`` (a slow stretch) or not (a deadlock); the run's figures stay those up to the
    stall."""
    log(f"[yellow]   stalled at {done:,.0f} alerts; what the workers wait for:[/yellow]")
    for line in snapshot(tenant):
        log(f"     {line}")
    deadline = time.monotonic() + watch_s
    while time.monotonic() < deadline:
        time.sleep(1.0)
        try:
            moved = sum(tenant.counts()) - done
        except OSError:
            continue
        if moved > 0:
            log(f"   moved again after the stall: +{moved:,.0f} alerts")
            return
    log(f"   still stalled {watch_s:.0f} s later:")
    for line in snapshot(tenant):
        log(f"     {line}")


def pipeline_run(
    bootstrap: str,
    redis_url: str,
    topology: Path,
    messages: Messages,
    args: argparse.Namespace,
    note: Callable[[str], None],
    r: redis.Redis,
    services: dict[str, int],
    inspect: Callable[[Tenant], None] | None = None,
    n_workers: int = 1,
    worker: dict[str, str] | None = None,
) -> Run:
    """Phase 3: ``n_workers`` on ``messages`` pre-produced, with Redis commands per alert and
    the CPU of ``services`` (broker, Redis) next to the workers'. A worker that exits is
    restarted and counted; ``inspect`` sees the tenant (topics, Redis) before it is removed;
    ``worker`` sets worker settings (``STORMWATCH_WORKER__<NAME>``)."""
    tenant = Tenant(
        bootstrap,
        redis_url,
        topology,
        args.partitions,
        args.rebalance_timeout_s,
        domains=getattr(args, "domains", 1),
        worker=worker or {},
    )
    tenant.create_topics()
    produce(bootstrap, tenant.topic("alerts.raw"), messages, BACKLOG_BATCH)
    try:
        run = drive(
            tenant, n_workers, len(messages), args.budget_s, r, services=services, restart=True
        )
        if inspect is not None:
            inspect(tenant)
    finally:
        tenant.stop()
    if run.stalled:
        note(
            f"full pipeline STALLED: nothing processed for 30 s after {run.processed:,.0f} "
            "alerts (worker alive, idle); the rate is up to the stall"
        )
    elif not run.finished:
        note(
            f"full pipeline: {run.processed:,.0f} of {len(messages):,} alerts processed "
            f"within the {args.budget_s:.0f} s budget; the rate is over those"
        )
    log(f"   {run.rate:,.0f} alerts/s over {run.processed:,.0f} alerts")
    return run


def scaling(
    bootstrap: str,
    redis_url: str,
    topology: Path,
    messages: Messages,
    args: argparse.Namespace,
    note: Callable[[str], None],
) -> dict[str, Run]:
    """1 worker, 2 workers, and 1 worker as 2 processes (:data:`SPLIT_ROLES`), each a fresh
    tenant on ``messages`` pre-produced."""
    budget = max(60.0, args.budget_s / 2)
    runs: dict[str, Run] = {}
    plans: list[tuple[str, int, list[str] | None]] = [
        ("1 worker", 1, None),
        ("2 workers", 2, None),
        ("1 worker as 2 processes", 1, SPLIT_ROLES),
    ]
    for label, n_workers, roles in plans:
        log(f"   scaling: {label}, {len(messages):,} alerts")
        t = Tenant(bootstrap, redis_url, topology, args.partitions, args.rebalance_timeout_s)
        t.create_topics()
        produce(bootstrap, t.topic("alerts.raw"), messages, BACKLOG_BATCH)
        try:
            runs[label] = drive(t, n_workers, len(messages), budget, roles=roles)
        finally:
            t.stop()
        log(f"   {runs[label].rate:,.0f} alerts/s")
        if runs[label].stalled:
            note(
                f"scaling run '{label}' STALLED after "
                f"{runs[label].processed:,.0f} alerts; the rate is up to the stall"
            )
    return runs
