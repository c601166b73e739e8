"""``make bench``: end-to-end throughput of the streaming worker next to its ceilings and a peer.

On one Tansu broker and one redis-server started here (``pipeline.app.localstack``):

1. transport ceiling: confluent-kafka produce and consume rates for storm-sized messages;
2. Faust ceiling: :mod:`benchmarks.faust_ceiling` subprocesses with the worker's settings,
   an agent that only consumes (``take_events`` batches) and one that also forwards;
3. full pipeline: the real worker (``python -m pipeline worker``) on a pre-produced storm over a
   generated 1,000-service topology (:mod:`benchmarks.storm`): alerts/s until it has
   processed them all (``stormwatch_stage_items_total{stage="dedup"}`` on its /metrics), peak
   RSS, Redis commands per alert, CPU cores used by worker, broker and Redis; then, with alerts
   produced at half that rate, the processing latency (``stormwatch_alert_processing_seconds``:
   arrival on alerts.raw -> its correlate step published) and produce -> first incident event
   carrying the alert (which includes the deliberate rate limit of ``updated`` events), next
   to two latency floors at that rate, the pipeline's two hops with no work: through Faust
   with the worker's settings, and through raw confluent-kafka clients (each of the three on
   a fresh broker, see :func:`fresh_broker`); and 1 vs 2 workers on 4 by-domain partitions;
4. peer: Prometheus Alertmanager ingesting the same alerts through ``POST /api/v2/alerts``;
5. ratios.

Each phase deletes its topics when it is done, so the next one starts on a broker without the
last one's data (Tansu keeps everything in memory here; a broker in service has retention).

Usage: ``python -m benchmarks.throughput [--alerts N] [--quick] [--budget-s S] [--json OUT]``;
``--latency-at R [R ...]`` runs only the latency phase and both floors at the given rates.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from benchmarks import ROOT
from benchmarks import storm as storm_mod
from pipeline.app.localstack import (
    LOCAL_FETCH_MAX_WAIT_MS,
    Service,
    free_port,
    start_broker,
    start_redis,
    worker_env,
    worker_healthy,
)
from pipeline.config import WorkerSettings

console = Console(width=130)
Messages = Sequence[tuple[bytes, bytes]]


def log(msg: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}")


# --- Kafka helpers ----------------------------------------------------------------------------


def create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, num_partitions=partitions) for n in names])
    for future in futures.values():
        future.result(timeout=30)


def drop_topics(bootstrap: str, names: Sequence[str]) -> None:
    """Delete a finished phase's topics, so the broker (Tansu keeps everything in memory here)
    enters the next phase without the last one's data, as a broker with retention would."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, future in admin.delete_topics(list(names), operation_timeout=30).items():
        try:
            future.result(timeout=30)
        except Exception as exc:  # the figures stand without it; say so
            log(f"[yellow]could not delete topic {name}: {exc}[/yellow]")


def _producer(bootstrap: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "batch.num.messages": 10_000,
        }
    )


def produce(bootstrap: str, topic: str, messages: Messages) -> float:
    """Produce all messages as fast as possible; return the rate (messages/s incl. flush)."""
    producer = _producer(bootstrap)
    started = time.perf_counter()
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value, key=key)
                break
            except BufferError:
                producer.poll(0.01)
    remaining = producer.flush(60)
    if remaining:
        raise RuntimeError(f"{remaining} messages not delivered to {topic}")
    return len(messages) / (time.perf_counter() - started)


def _paced_producer(bootstrap: str) -> Producer:
    """The producer of every paced (latency) measurement: a steady alert source's linger."""
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, "acks": "all"})


def produce_paced(
    bootstrap: str, topic: str, messages: Messages, rate: float, stamp_header: str | None = None
) -> tuple[float, list[float]]:
    """Produce at about ``rate`` messages/s in 10 ms slices; with ``stamp_header``, each
    message carries its send time (epoch seconds) in that header.

    Returns the achieved rate and each message's produce time (epoch seconds).
    """
    producer = _paced_producer(bootstrap)
    slice_s = 0.01
    per_slice = max(1, round(rate * slice_s))
    sent_at: list[float] = []
    started = time.perf_counter()
    for i in range(0, len(messages), per_slice):
        due = started + (i / per_slice) * slice_s
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        now = time.time()
        headers: list[tuple[str, str | bytes | None]] | None = (
            [(stamp_header, repr(now).encode())] if stamp_header else None
        )
        for key, value in messages[i : i + per_slice]:
            producer.produce(topic, value, key=key, headers=headers)
            sent_at.append(now)
        producer.poll(0)
    producer.flush(60)
    return len(messages) / (time.perf_counter() - started), sent_at


def consume_rate(bootstrap: str, topic: str, count: int, timeout_s: float = 120) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "max.poll.interval.ms": 6000,
            "fetch.max.bytes": 52_428_800,
            "log_level": 2,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    first = 0.0
    deadline = time.monotonic() + timeout_s
    try:
        while seen < count and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=10_000, timeout=0.5)
            good = sum(1 for m in batch if not m.error())
            if good and not first:
                first = time.perf_counter()
            seen += good
        last = time.perf_counter()
    finally:
        consumer.close()
    if seen < count:
        raise RuntimeError(f"consumed only {seen} of {count} from {topic}")
    return seen / (last - first)


def cycle(messages: Messages, n: int) -> list[tuple[bytes, bytes]]:
    return [messages[i % len(messages)] for i in range(n)]


# --- 1. transport ceiling ---------------------------------------------------------------------


def transport_ceiling(bootstrap: str, messages: Messages, partitions: int) -> dict[str, float]:
    topic = f"bench.transport.{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, [topic], partitions)
    produced = produce(bootstrap, topic, messages)
    consumed = consume_rate(bootstrap, topic, len(messages))
    drop_topics(bootstrap, [topic])
    return {"produce": produced, "consume": consumed}


def _assigned_consumer(bootstrap: str, topic: str, partitions: int) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": LOCAL_FETCH_MAX_WAIT_MS,  # as the workers here
            "fetch.min.bytes": 1,
            "log_level": 2,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    return consumer


def _sent_at(msg: Any) -> float:
    """The send time a latency probe carries in its only header."""
    ((_, stamp),) = msg.headers()
    return float(stamp)


def transport_latency(
    bootstrap: str, messages: Messages, partitions: int, rate: float
) -> dict[str, float]:
    """The latency floor of the pipeline's path on this broker: raw confluent-kafka clients,
    paced like the latency phase, produce -> topic A -> a relay (consume, produce with the
    worker's linger and acks) -> topic B -> consume. Returns p50/p99 seconds after one hop
    (at the relay) and after both."""
    a, b = (f"bench.hop{i}.{uuid.uuid4().hex[:6]}" for i in (1, 2))
    create_topics(bootstrap, [a, b], partitions)
    one_hop: list[float] = []
    two_hops: list[float] = []
    stop = threading.Event()

    def relay() -> None:
        consumer = _assigned_consumer(bootstrap, a, partitions)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, "acks": "all"})
        while not stop.is_set():
            msg = consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            one_hop.append(time.time() - _sent_at(msg))
            producer.produce(b, msg.value(), key=msg.key(), headers=msg.headers())
            producer.poll(0)
        producer.flush(10)
        consumer.close()

    def sink() -> None:
        consumer = _assigned_consumer(bootstrap, b, partitions)
        while not stop.is_set():
            msg = consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            two_hops.append(time.time() - _sent_at(msg))
        consumer.close()

    threads = [threading.Thread(target=relay), threading.Thread(target=sink)]
    for t in threads:
        t.start()
    time.sleep(2)  # both consumers have their partitions and have fetched once
    achieved, _ = produce_paced(bootstrap, a, messages, rate, stamp_header="t")
    deadline = time.monotonic() + 10
    while len(two_hops) < len(messages) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    drop_topics(bootstrap, [a, b])
    return {
        "rate": achieved,
        "one_hop_p50": pct(one_hop, 0.5),
        "one_hop_p99": pct(one_hop, 0.99),
        "p50": pct(two_hops, 0.5),
        "p99": pct(two_hops, 0.99),
        "measured": len(two_hops),
    }


def faust_latency(
    bootstrap: str, messages: Messages, partitions: int, rate: float, timeout_s: float = 60.0
) -> dict[str, float] | None:
    """The latency floor of the pipeline's two hops through Faust, with no work:
    :mod:`benchmarks.faust_ceiling` ``relay`` (the worker's settings, batch messages per
    partition between the hops), paced like the latency phase. Returns p50/p99 seconds from
    send to the second hop, or None if the app did not start or wrote no result."""
    ns = f"bench.faust.relay.{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, [ns, ns + ".out"], partitions)
    warm: Messages = [(b"warm", b"{}")] * 200
    result = Path(tempfile.mkdtemp(prefix="sw-relay-")) / "result.json"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.faust_ceiling",
        "relay",
        *("--bootstrap", bootstrap, "--topic", ns, "--out-topic", ns + ".out"),
        *("--count", str(len(warm) + len(messages)), "--partitions", str(partitions)),
        *("--result", str(result)),
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    progress = Path(str(result) + ".progress")

    def seen() -> int:
        try:
            return int(progress.read_text() or 0)
        except (OSError, ValueError):
            return 0

    try:
        produce(bootstrap, ns, warm)  # stamp 0: not recorded; the group settles meanwhile
        deadline = time.monotonic() + timeout_s
        while seen() < len(warm):
            if proc.poll() is not None or time.monotonic() > deadline:
                return None
            time.sleep(0.2)
        achieved, _ = produce_paced(bootstrap, ns, messages, rate, stamp_header="t")
        deadline = time.monotonic() + 30
        while not result.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                return None
            time.sleep(0.2)
        lat = list(json.loads(result.read_text())["latencies"])
        return {
            "rate": achieved,
            "p50": pct(lat, 0.5),
            "p99": pct(lat, 0.99),
            "measured": len(lat),
        }
    finally:
        _kill(proc)
        drop_topics(bootstrap, [ns, ns + ".out"])


# --- 2. Faust ceiling -------------------------------------------------------------------------


def faust_ceiling(
    bootstrap: str,
    mode: str,
    messages: Messages,
    partitions: int,
    note: Callable[[str], None],
    rebalance_timeout_s: float = 3.0,
) -> dict[str, Any] | None:
    """Run the Faust ceiling app; retry once if it makes no progress for 30 s (a start-up
    hang was seen once on Tansu). None if both attempts failed."""
    for attempt in (1, 2):
        try:
            return _faust_ceiling_once(bootstrap, mode, messages, partitions, rebalance_timeout_s)
        except RuntimeError as exc:
            note(f"Faust {mode} ceiling, attempt {attempt}: {exc}")
    return None


def _faust_ceiling_once(
    bootstrap: str, mode: str, messages: Messages, partitions: int, rebalance_timeout_s: float
) -> dict[str, Any]:
    ns = f"bench.faust.{mode}.{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, [ns, ns + ".out"], partitions)
    produce(bootstrap, ns, messages)
    result = Path(tempfile.mkdtemp(prefix="sw-ceiling-")) / "result.json"
    progress = Path(str(result) + ".progress")
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.faust_ceiling",
        mode,
        "--bootstrap",
        bootstrap,
        "--topic",
        ns,
        "--out-topic",
        ns + ".out",
        "--count",
        str(len(messages)),
        "--partitions",
        str(partitions),
        "--result",
        str(result),
        "--rebalance-timeout",
        str(rebalance_timeout_s),
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        seen, changed = "", time.monotonic()
        while not result.exists():
            if proc.poll() is not None:
                err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise RuntimeError(f"exited {proc.returncode}: {err}")
            now = progress.read_text() if progress.exists() else ""
            if now != seen:
                seen, changed = now, time.monotonic()
            elif time.monotonic() - changed > 30:
                raise RuntimeError(f"no progress for 30 s (at {seen or 0} messages)")
            time.sleep(0.2)
        data: dict[str, Any] = json.loads(result.read_text())
        return data
    finally:
        _kill(proc)
        drop_topics(bootstrap, [ns, ns + ".out"])


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


# --- 3. full pipeline -------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m:
            labels = dict(_LABEL.findall(m.group(2) or ""))
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def scrape(port: int) -> list[tuple[str, dict[str, str], float]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return parse_metrics(resp.read().decode())
    except OSError:
        return []


def processed(samples: list[tuple[str, dict[str, str], float]]) -> float:
    return sum(
        v
        for name, labels, v in samples
        if name == "stormwatch_stage_items_total" and labels.get("stage") == "dedup"
    )


def latency_buckets(samples: list[tuple[str, dict[str, str], float]]) -> dict[float, float]:
    return {
        float(labels["le"]): v
        for name, labels, v in samples
        if name == "stormwatch_alert_processing_seconds_bucket"
    }


def quantile(buckets: dict[float, float], q: float) -> float:
    """Quantile from cumulative histogram buckets, linear within a bucket (like PromQL)."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return float("nan")
    rank = q * total
    prev_b, prev_c = 0.0, 0.0
    for b in bounds:
        c = buckets[b]
        if c >= rank:
            if b == float("inf"):
                return prev_b
            return prev_b + (b - prev_b) * ((rank - prev_c) / max(c - prev_c, 1e-12))
        prev_b, prev_c = b, c
    return prev_b


@dataclass
class Tenant:
    """One isolated pipeline deployment: app id, topics, Redis prefix, worker processes."""

    bootstrap: str
    redis_url: str
    topology: Path
    partitions: int
    rebalance_timeout_s: float = 3.0
    ns: str = field(default_factory=lambda: f"bench{uuid.uuid4().hex[:6]}")
    workers: list[tuple[subprocess.Popen[bytes], int]] = field(default_factory=list)
    counting: list[bool] = field(default_factory=list)  # per worker: runs the correlate role

    def topic(self, name: str) -> str:
        return f"{self.ns}.{name}"

    def env(self, web_port: int, roles: str | None = None) -> dict[str, str]:
        extra = {"roles": roles} if roles else {}
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
        return [*names, self.topic("remediations"), f"{self.ns}-alerts-by-domain"]

    def create_topics(self) -> None:
        create_topics(self.bootstrap, self.topic_names(), self.partitions)

    def start_workers(self, n: int, roles: Sequence[str] | None = None) -> None:
        """``n`` workers with every role, or one process per entry of ``roles``."""
        for i in range(len(roles) if roles else n):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipeline", "worker"],
                env=self.env(port, roles[i] if roles else None),
                cwd=ROOT,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
            )
            self.workers.append((proc, port))
            self.counting.append(not roles or "correlate" in roles[i])
        deadline = time.monotonic() + 90
        for proc, port in self.workers:
            while not worker_healthy(port):
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited ({proc.returncode}) at start-up")
                if time.monotonic() > deadline:
                    raise RuntimeError("worker not healthy after 90 s")
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the workers and delete the tenant's topics (see :func:`drop_topics`)."""
        for proc, _ in self.workers:
            _kill(proc)
        self.workers.clear()
        self.counting.clear()
        drop_topics(self.bootstrap, self.topic_names())

    def counts(self) -> list[float]:
        """Alerts each correlating worker has deduplicated (ingest-only processes count none
        and are left out)."""
        return [
            processed(scrape(port))
            for (_, port), counts in zip(self.workers, self.counting, strict=True)
            if counts
        ]

    def rss(self) -> list[int]:
        out = []
        for proc, _ in self.workers:
            try:
                out.append(psutil.Process(proc.pid).memory_info().rss)
            except psutil.Error:
                out.append(0)
        return out


@dataclass
class Run:
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
) -> Run:
    """Start ``n_workers`` on a pre-produced backlog of ``total`` alerts; measure until done.

    The rate is taken from the moment every worker has processed something (so start-up and
    the initial rebalance are excluded) to the moment the last alert is counted. A run in
    which nothing moves for ``stall_s`` stops early and is marked stalled.
    """
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
    while True:
        counts = tenant.counts()
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
        if done >= total:
            break
        if now - t_start > budget_s:
            break
        if done > 0 and now - last_t > stall_s:
            stalled = True
            break
        for proc, _ in tenant.workers:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited ({proc.returncode}) during the run")
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
    )
    if cpu0 and cpu1 and t0 < last_t:
        run.cores = {k: (cpu1[k] - cpu0[k]) / (last_t - t0) for k in cpu0}
    if r is not None and before is not None:
        after = _redis_stats(r)
        run.redis_cmds_per_alert = (after[0] - before[0]) / max(done, 1)
        deltas = {k: (v - before[1].get(k, 0)) / max(done, 1) for k, v in after[1].items()}
        run.top_commands = sorted(deltas.items(), key=lambda kv: -kv[1])[:5]
    return run


def incident_times(bootstrap: str, topic: str, timeout_s: float = 60.0) -> dict[str, float]:
    """Alert id -> timestamp (s) of the first incident event on ``topic`` that carries it.

    Reads every partition from the beginning to its high watermark (no consumer group).
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "log_level": 2,
        }
    )
    first: dict[str, float] = {}
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        ends: dict[int, int] = {}
        for pid in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, pid), timeout=10)
            if high > low:
                ends[pid] = high
        consumer.assign([TopicPartition(topic, pid, OFFSET_BEGINNING) for pid in ends])
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5000, timeout=0.5):
                if msg.error():
                    continue
                pid, offset = msg.partition(), msg.offset()
                if pid is not None and offset is not None and offset + 1 >= ends.get(pid, 0):
                    ends.pop(pid, None)
                at = msg.timestamp()[1] / 1000
                event = json.loads(msg.value() or b"{}")
                for aid in event.get("incident", {}).get("alert_ids", []):
                    if aid not in first or at < first[aid]:
                        first[aid] = at
    finally:
        consumer.close()
    return first


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_at(
    tenant: Tenant, messages: Messages, rate: float, timeout_s: float
) -> dict[str, float]:
    """One worker, alerts produced at ``rate``: produce time -> first incident event with the
    alert (the incident message's CreateTime, stamped by the worker's producer at send)."""
    tenant.start_workers(1)
    port = tenant.workers[0][1]
    # warm-up: a few alerts so the consumer group has settled before the paced run
    warm, paced = messages[:200], messages[200:]
    produce(tenant.bootstrap, tenant.topic("alerts.raw"), warm)
    deadline = time.monotonic() + 60
    while processed(scrape(port)) < len(warm) and time.monotonic() < deadline:
        time.sleep(0.2)
    before = latency_buckets(scrape(port))
    achieved, sent_at = produce_paced(tenant.bootstrap, tenant.topic("alerts.raw"), paced, rate)
    deadline = time.monotonic() + timeout_s
    samples = scrape(port)
    last_n, last_change = processed(samples), time.monotonic()
    while processed(samples) < len(messages) and time.monotonic() < deadline:
        if time.monotonic() - last_change > 5:  # drained (a few may be counted elsewhere)
            break
        time.sleep(0.25)
        samples = scrape(port)
        if processed(samples) != last_n:
            last_n, last_change = processed(samples), time.monotonic()
    after = latency_buckets(samples)
    hist = {b: after[b] - before.get(b, 0.0) for b in after}
    seen = incident_times(tenant.bootstrap, tenant.topic("incidents"))
    lat = []
    for (_, value), t_sent in zip(paced, sent_at, strict=True):
        at = seen.get(json.loads(value)["id"])
        if at is not None:
            lat.append(max(0.0, at - t_sent))
    quarter = max(1, len(lat) // 4)
    return {
        "rate": achieved,
        "p50": pct(lat, 0.5),
        "p95": pct(lat, 0.95),
        "p99": pct(lat, 0.99),
        "max": max(lat, default=float("nan")),
        "p50_first_quarter": pct(lat[:quarter], 0.5),
        "p50_last_quarter": pct(lat[-quarter:], 0.5),
        "measured": len(lat),
        "paced": len(paced),
        "processed": processed(samples) - len(warm),
        "hist_p50": quantile(hist, 0.5),
        "hist_p99": quantile(hist, 0.99),
        "hist_over_5s": hist.get(float("inf"), 0.0) - hist.get(5.0, 0.0),
        "hist_count": hist.get(float("inf"), 0.0),
    }


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


def latency_phase(
    workdir: Path,
    redis_url: str,
    topo_path: Path,
    paced: Messages,
    rate: float,
    args: argparse.Namespace,
    note: Callable[[str], None],
    floors: bool = True,
) -> dict[str, Any]:
    """Processing latency of one worker at ``rate`` (``latency``) and, with ``floors``, the
    Faust and raw-client floors at the same rate over the same messages (``faust_latency``,
    ``transport_latency``), each on a fresh broker whose CPU it reports."""
    out: dict[str, Any] = {}
    with fresh_broker(workdir, "latency") as (lat_broker, cores):
        tenant = Tenant(
            lat_broker.url, redis_url, topo_path, args.partitions, args.rebalance_timeout_s
        )
        tenant.create_topics()
        try:
            out["latency"] = latency_at(tenant, paced, rate, 120)
        finally:
            tenant.stop()
    out["latency"]["broker_cores"] = cores[0]
    log(f"   {out['latency']}")
    if not floors:
        return out
    log(f"   Faust latency floor at {rate:,.0f} messages/s (2 hops, no work)")
    with fresh_broker(workdir, "faust-floor") as (floor_broker, cores):
        out["faust_latency"] = faust_latency(floor_broker.url, paced, args.partitions, rate)
    if out["faust_latency"] is None:
        note("Faust latency floor: the relay app did not start within 60 s")
    else:
        out["faust_latency"]["broker_cores"] = cores[0]
    log(f"   {out['faust_latency']}")
    log(f"   transport latency floor at {rate:,.0f} messages/s (2 hops, raw clients)")
    with fresh_broker(workdir, "transport-floor") as (floor_broker, cores):
        out["transport_latency"] = transport_latency(floor_broker.url, paced, args.partitions, rate)
    out["transport_latency"]["broker_cores"] = cores[0]
    log(f"   {out['transport_latency']}")
    return out


def latency_sweep(rates: Sequence[float], args: argparse.Namespace) -> None:
    """``--latency-at``: the latency phase and both floors at each rate, then one table."""
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        log(f"[yellow]{msg}[/yellow]")

    storm = storm_mod.generate(int(max(rates) * args.latency_s) + 400)
    workdir = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    topo_path = workdir / "topology.yaml"
    topo_path.write_text(storm_mod.topology_yaml(storm.topology))
    redis_service = start_redis()
    rows: list[dict[str, Any]] = []
    try:
        for rate in rates:
            paced = storm.messages[: int(rate * args.latency_s) + 200]
            log(f"latency at {rate:,.0f} alerts/s for ~{args.latency_s:.0f} s")
            rows.append(
                latency_phase(workdir, redis_service.url, topo_path, paced, rate, args, note)
            )
    finally:
        redis_service.stop()
    table = Table(title=f"processing latency by rate ({args.latency_s:.0f} s each, fresh brokers)")
    for col in ("alerts/s", "pipeline p50 / p99", "Faust floor p50 / p99", "raw floor p50 / p99"):
        table.add_column(col, justify="right")

    def ms(d: dict[str, Any] | None, p50: str = "p50", p99: str = "p99") -> str:
        return "-" if not d else f"{d[p50] * 1e3:.0f} / {d[p99] * 1e3:.0f} ms"

    for fig in rows:
        table.add_row(
            f"{fig['latency']['rate']:,.0f}",
            ms(fig["latency"], "hist_p50", "hist_p99"),
            ms(fig.get("faust_latency")),
            ms(fig.get("transport_latency")),
        )
    console.print(table)
    for msg in notes:
        console.print(f"note: {msg}")


# --- 4. Alertmanager --------------------------------------------------------------------------

AM_CONFIG = """\
route:
  receiver: blackhole
  group_by: ['service']
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: blackhole
"""


def alertmanager_binary(console_note: Callable[[str], None]) -> str | None:
    found = shutil.which("prometheus-alertmanager")
    if found:
        return found
    if os.geteuid() != 0:
        console_note("Alertmanager skipped: not installed and not root (apt-get needs root)")
        return None
    console_note("installing prometheus-alertmanager with apt-get")
    proc = subprocess.run(
        ["apt-get", "install", "-y", "prometheus-alertmanager"],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        check=False,
    )
    found = shutil.which("prometheus-alertmanager")
    if not found:
        tail = proc.stderr.decode()[-300:]
        console_note(f"Alertmanager skipped: apt-get install failed ({tail.strip()})")
    return found


def to_alertmanager(values: Sequence[bytes], now: float) -> list[dict[str, Any]]:
    """Canonical alerts -> Alertmanager v2 postable alerts, event times shifted to now."""
    decoded = [json.loads(v) for v in values]
    if not decoded:
        return []
    last = datetime.fromisoformat(decoded[-1]["timestamp"].replace("Z", "+00:00")).timestamp()
    out = []
    for a in decoded:
        at = datetime.fromisoformat(a["timestamp"].replace("Z", "+00:00")).timestamp()
        ts = datetime.fromtimestamp(now - (last - at), UTC).isoformat()
        item: dict[str, Any] = {
            "labels": {
                **a.get("labels", {}),
                "alertname": a["name"],
                "service": a["service"],
                "severity": a["severity"],
            },
            "annotations": a.get("annotations", {}),
            "startsAt": ts,
        }
        if a["status"] == "resolved":
            item["endsAt"] = ts
        out.append(item)
    return out


def alertmanager_rate(
    values: Sequence[bytes], batch: int, clients: int, note: Callable[[str], None]
) -> dict[str, Any] | None:
    binary = alertmanager_binary(note)
    if binary is None:
        return None
    workdir = Path(tempfile.mkdtemp(prefix="sw-am-"))
    (workdir / "am.yml").write_text(AM_CONFIG)
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'am.yml'}",
            f"--storage.path={workdir}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    note("Alertmanager skipped: it did not become ready")
                    return None
                time.sleep(0.2)
        bodies = [
            json.dumps(to_alertmanager(values[i : i + batch], time.time())).encode()
            for i in range(0, len(values), batch)
        ]
        errors: list[str] = []

        def post(mine: list[bytes]) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for body in mine:
                conn.request("POST", "/api/v2/alerts", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors.append(f"HTTP {resp.status}")
            conn.close()

        threads = [
            threading.Thread(target=post, args=(bodies[k::clients],)) for k in range(clients)
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        rss = psutil.Process(proc.pid).memory_info().rss
        if errors:
            note(f"Alertmanager answered {len(errors)} batches with errors, e.g. {errors[0]}")
        return {"rate": len(values) / seconds, "alerts": len(values), "rss": rss}
    finally:
        _kill(proc)


# --- main -------------------------------------------------------------------------------------


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def _r(x: float) -> str:
    return f"{x:,.0f}/s"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__)
    p.add_argument("--alerts", type=int, default=1_000_000, help="alerts for the full pipeline")
    p.add_argument("--quick", action="store_true", help="50,000 alerts, smaller ceilings")
    p.add_argument("--budget-s", type=float, default=300, help="max seconds for the 1M run")
    p.add_argument("--transport", type=int, default=500_000, help="messages, transport ceiling")
    p.add_argument("--faust", type=int, default=200_000, help="messages, Faust ceilings")
    p.add_argument("--scale-alerts", type=int, default=100_000, help="alerts, 1 vs 2 workers")
    p.add_argument("--latency-s", type=float, default=30, help="seconds of paced production")
    p.add_argument("--am-alerts", type=int, default=200_000, help="alerts for Alertmanager")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument(
        "--rebalance-timeout-s",
        type=float,
        default=3.0,
        help="rebalance (and so session) timeout of the workers and Faust ceiling apps",
    )
    p.add_argument("--no-ceilings", action="store_true", help="skip transport and Faust")
    p.add_argument("--no-alertmanager", action="store_true")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    p.add_argument(
        "--latency-at",
        type=float,
        nargs="+",
        metavar="RATE",
        help="only the latency phase and both floors, at each of these alerts/s",
    )
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if args.latency_at:
        if min(args.latency_at) <= 0:
            p.error("--latency-at: rates must be > 0 alerts/s")
        latency_sweep(args.latency_at, args)
        return
    if args.quick:
        args.alerts = min(args.alerts, 50_000)
        args.transport = min(args.transport, 100_000)
        args.faust = min(args.faust, 50_000)
        args.scale_alerts = min(args.scale_alerts, 50_000)
        args.am_alerts = min(args.am_alerts, 50_000)
        args.latency_s = min(args.latency_s, 10)
        args.budget_s = min(args.budget_s, 120)
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        log(f"[yellow]{msg}[/yellow]")

    cpu = os.cpu_count() or 1
    log(f"{cpu} CPU cores; generating the storm ({args.alerts:,} alerts, 1,000 services)")
    paced_guess = 200_000
    storm = storm_mod.generate(args.alerts + paced_guess + args.scale_alerts)
    main_msgs = storm.messages[: args.alerts]
    rest = storm.messages[args.alerts :]
    workdir = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    topo_path = workdir / "topology.yaml"
    topo_path.write_text(storm_mod.topology_yaml(storm.topology))
    log(f"mean alert size {storm.mean_size:.0f} B, topology {topo_path}")

    broker = start_broker(log_path=workdir / "tansu.log")
    redis_service: Service | None = None
    fig: dict[str, Any] = {"cpu": cpu, "alert_bytes": storm.mean_size, "notes": notes}
    try:
        redis_service = start_redis()
        r = redis.Redis.from_url(redis_service.url)
        bootstrap = broker.url

        fig["transport"] = {"produce": float("nan"), "consume": float("nan")}
        fig["faust_consume"] = fig["faust_forward"] = None
        if not args.no_ceilings:
            log(f"1. transport ceiling, {args.transport:,} messages")
            fig["transport"] = transport_ceiling(
                bootstrap, cycle(storm.messages, args.transport), args.partitions
            )
            log(f"   {fig['transport']}")

            log(f"2. Faust ceilings, {args.faust:,} messages each")
            for mode in ("consume", "forward"):
                fig[f"faust_{mode}"] = faust_ceiling(
                    bootstrap,
                    mode,
                    cycle(storm.messages, args.faust),
                    args.partitions,
                    note,
                    args.rebalance_timeout_s,
                )
                log(f"   {mode}: {fig[f'faust_{mode}']}")

        log(f"3. full pipeline, 1 worker, {len(main_msgs):,} alerts pre-produced")
        tenant = Tenant(
            bootstrap, redis_service.url, topo_path, args.partitions, args.rebalance_timeout_s
        )
        tenant.create_topics()
        produce(bootstrap, tenant.topic("alerts.raw"), main_msgs)
        try:
            run1 = drive(
                tenant,
                1,
                len(main_msgs),
                args.budget_s,
                r,
                services={"broker": broker.proc.pid, "redis": redis_service.proc.pid},
            )
        finally:
            tenant.stop()
        fig["pipeline"] = run1
        if run1.stalled:
            note(
                f"full pipeline STALLED: nothing processed for 30 s after {run1.processed:,.0f} "
                "alerts (worker alive, idle); the rate is up to the stall"
            )
        elif not run1.finished:
            note(
                f"full pipeline: {run1.processed:,.0f} of {len(main_msgs):,} alerts processed "
                f"within the {args.budget_s:.0f} s budget; the rate is over those"
            )
        log(f"   {run1.rate:,.0f} alerts/s over {run1.processed:,.0f} alerts")

        half = run1.rate / 2
        n_paced = min(len(rest), int(half * args.latency_s) + 200)
        paced = rest[:n_paced]
        log(
            f"   latency at half the max rate: {half:,.0f} alerts/s for ~{args.latency_s:.0f} s, "
            "each measurement on a fresh broker"
        )
        fig.update(
            latency_phase(
                workdir, redis_service.url, topo_path, paced, half, args, note, not args.no_ceilings
            )
        )
        lat = fig["latency"]
        if lat["hist_count"] and lat["hist_over_5s"] >= 0.99 * lat["hist_count"]:
            note(
                "the worker's stormwatch_alert_processing_seconds put "
                f"{lat['hist_over_5s']:,.0f} of {lat['hist_count']:,.0f} observations above 5 s: "
                "its arrival header holds Faust's Message.timestamp (seconds) but is read as "
                "milliseconds, so the bench measures produce -> incident event itself"
            )

        if not args.no_scaling:
            scale = args.scale_alerts
            scale_msgs = rest[-scale:] if len(rest) >= scale else main_msgs[:scale]
            budget = max(60.0, args.budget_s / 2)
            runs: dict[str, Run] = {}
            plans: list[tuple[str, int, list[str] | None]] = [
                ("1 worker", 1, None),
                ("2 workers", 2, None),
                ("1 worker as 2 processes", 1, SPLIT_ROLES),
            ]
            for label, n_workers, roles in plans:
                log(f"   scaling: {label}, {scale:,} alerts")
                t = Tenant(
                    bootstrap,
                    redis_service.url,
                    topo_path,
                    args.partitions,
                    args.rebalance_timeout_s,
                )
                t.create_topics()
                produce(bootstrap, t.topic("alerts.raw"), scale_msgs)
                try:
                    runs[label] = drive(t, n_workers, len(scale_msgs), budget, roles=roles)
                finally:
                    t.stop()
                log(f"   {runs[label].rate:,.0f} alerts/s")
                if runs[label].stalled:
                    note(
                        f"scaling run '{label}' STALLED after "
                        f"{runs[label].processed:,.0f} alerts; the rate is up to the stall"
                    )
            fig["scaling"] = runs

        if not args.no_alertmanager:
            n_am = min(args.am_alerts, len(main_msgs))
            log(f"4. Alertmanager, {n_am:,} alerts in batches of 1,000")
            fig["alertmanager"] = alertmanager_rate([v for _, v in main_msgs[:n_am]], 1000, 2, note)
            log(f"   {fig['alertmanager']}")
        else:
            note("Alertmanager skipped: --no-alertmanager")
    finally:
        if redis_service is not None:
            redis_service.stop()
        broker.stop()

    report(fig, args)
    if args.json:
        args.json.write_text(json.dumps(fig, default=lambda o: o.__dict__, indent=2))


def report(fig: dict[str, Any], args: argparse.Namespace) -> None:
    run1: Run = fig["pipeline"]
    tr = fig["transport"]
    nan = {"rate": float("nan")}  # a ceiling that was skipped or failed
    fc, ff = fig["faust_consume"] or nan, fig["faust_forward"] or nan
    lat = fig.get("latency") or {}
    am = fig.get("alertmanager")
    table = Table(title=f"stormwatch throughput ({fig['cpu']} cores, one Tansu broker, one Redis)")
    table.add_column("measure")
    table.add_column("figure", justify="right")
    table.add_column("target / note")
    table.add_row("alert size (mean JSON)", f"{fig['alert_bytes']:.0f} B", "")
    table.add_row("transport: confluent-kafka produce", _r(tr["produce"]), "")
    table.add_row("transport: confluent-kafka consume", _r(tr["consume"]), "")
    table.add_row("Faust: consume only (take_events 500)", _r(fc["rate"]), "worker settings")
    table.add_row("Faust: consume + produce", _r(ff["rate"]), "worker settings")
    done = "" if run1.finished else f" ({run1.processed:,.0f} of {run1.alerts:,} in budget)"
    if run1.stalled:
        done = f" (STALLED after {run1.processed:,.0f} of {run1.alerts:,})"
    ok = "met" if run1.rate >= 20_000 else "NOT met"
    table.add_row(
        "pipeline, 1 worker",
        _r(run1.rate),
        f">= 20,000/s: {ok}; {run1.processed:,.0f} alerts" + done,
    )
    if run1.cores:
        table.add_row(
            "  CPU cores used during the run",
            f"{sum(run1.cores.values()):.2f}",
            ", ".join(f"{k} {v:.2f}" for k, v in run1.cores.items()),
        )
    if lat:
        ok = "met" if lat["hist_p99"] < 0.1 else "NOT met"
        table.add_row("  latency at half max rate", _r(lat["rate"]), "paced producer")
        table.add_row(
            "  processing p50 / p99",
            f"{lat['hist_p50'] * 1e3:.0f} / {lat['hist_p99'] * 1e3:.0f} ms",
            f"< 100 ms: {ok}; alerts.raw arrival -> its correlate step published (worker "
            f"histogram, {lat['hist_count']:,.0f} alerts, {lat['hist_over_5s']:,.0f} > 5 s)"
            + _broker_note(lat),
        )
        faust_floor = fig.get("faust_latency")
        if faust_floor:
            table.add_row(
                "  Faust floor p50 / p99, 2 hops",
                f"{faust_floor['p50'] * 1e3:.0f} / {faust_floor['p99'] * 1e3:.0f} ms",
                f"Faust relay at {faust_floor['rate']:,.0f}/s, worker settings: produce -> topic "
                "-> agent -> batch message -> topic -> agent, the pipeline's two hops with no "
                f"work; pipeline p99 / Faust floor p99 = "
                f"{lat['hist_p99'] / faust_floor['p99']:.2f}x" + _broker_note(faust_floor),
            )
        floor = fig.get("transport_latency")
        if floor:
            table.add_row(
                "  transport floor p50 / p99, 1 hop | 2 hops",
                f"{floor['one_hop_p50'] * 1e3:.0f} / {floor['one_hop_p99'] * 1e3:.0f} | "
                f"{floor['p50'] * 1e3:.0f} / {floor['p99'] * 1e3:.0f} ms",
                f"raw confluent-kafka at {floor['rate']:,.0f}/s: produce -> topic -> relay -> "
                "topic -> consume, the two hops through raw clients; pipeline p99 / floor "
                f"p99 = {lat['hist_p99'] / floor['p99']:.2f}x" + _broker_note(floor),
            )
        table.add_row(
            "  produce -> first incident event p50 / p95 / p99",
            f"{lat['p50'] * 1e3:.0f} / {lat['p95'] * 1e3:.0f} / {lat['p99'] * 1e3:.0f} ms",
            f"includes the deliberate <= {WorkerSettings().update_interval_s:g} s rate limit "
            f"of `updated` events; {lat['measured']:,} of {lat['paced']:,} alerts in an event",
        )
    table.add_row("  peak RSS of the worker", _mb(run1.peak_rss[0]), memory_note(run1))
    table.add_row(
        "  Redis commands per alert",
        f"{run1.redis_cmds_per_alert:.2f}",
        ", ".join(f"{k} {v:.2f}" for k, v in run1.top_commands[:3]),
    )
    scaling: dict[str, Run] | None = fig.get("scaling")
    if scaling:
        one, two = scaling["1 worker"], scaling["2 workers"]
        factor = two.rate / one.rate if one.rate else 0.0
        ok = "met" if factor >= 1.6 else "NOT met"
        table.add_row("scaling: 1 worker", _r(one.rate), f"{one.processed:,.0f} alerts")
        table.add_row(
            "scaling: 2 workers",
            _r(two.rate),
            f"{two.processed:,.0f} alerts, RSS {', '.join(_mb(x) for x in two.peak_rss)}",
        )
        table.add_row("  scaling factor", f"{factor:.2f}x", f">= 1.6x: {ok} ({fig['cpu']} cores)")
        split = scaling.get("1 worker as 2 processes")
        if split is not None:
            table.add_row(
                "1 worker as 2 processes",
                _r(split.rate),
                f"roles {' | '.join(SPLIT_ROLES)}: {split.rate / one.rate:.2f}x one process",
            )
    if am:
        table.add_row("Alertmanager 0.25 POST /api/v2/alerts", _r(am["rate"]), "group_by service")
    else:
        table.add_row("Alertmanager", "skipped", "see notes")
    ratio = run1.rate / fc["rate"]
    ok = "met" if ratio >= 0.7 else "NOT met"
    table.add_row("ratio pipeline / Faust consume ceiling", f"{ratio:.1%}", f">= 70%: {ok}")
    table.add_row(
        "ratio Faust consume / transport consume", f"{fc['rate'] / tr['consume']:.1%}", ""
    )
    table.add_row(
        "ratio Faust forward / transport produce", f"{ff['rate'] / tr['produce']:.1%}", ""
    )
    if am:
        table.add_row("ratio pipeline / Alertmanager", f"{run1.rate / am['rate']:.2f}x", "")
    console.print(table)
    for n in fig["notes"]:
        console.print(f"note: {n}")


def _broker_note(phase: dict[str, Any]) -> str:
    cores = phase.get("broker_cores")
    return "" if cores is None else f"; fresh broker, {cores:.2f} cores"


def memory_note(run: Run) -> str:
    """Median RSS over the second quarter of the run against the median over the last quarter
    (medians: a single sample can land on a moment between two garbage collections)."""
    samples = [(c, m) for c, m in run.rss_samples if c > 0]
    if len(samples) < 8:
        return ""
    total = samples[-1][0]
    second = [m for c, m in samples if total / 4 <= c < total / 2]
    last = [m for c, m in samples if c >= 3 * total / 4]
    if not second or not last:
        return ""
    before, after = statistics.median(second), statistics.median(last)
    growth = (after - before) / max(before, 1)
    flat = "flat" if growth < 0.1 else "NOT flat"
    return f"median {_mb(before)} over 25-50% -> {_mb(after)} over 75-100% ({growth:+.0%}): {flat}"


if __name__ == "__main__":
    main()
