"""Latency floors at the latency phase's rate: the pipeline's two hops with no work, through
raw confluent-kafka clients (:func:`transport_latency`) and through Faust with the worker's
settings (:func:`faust_latency`, the ``relay`` app of :mod:`benchmarks.streaming.faust_apps`)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from benchmarks import ROOT
from benchmarks.streaming.kafka import Messages, create_topics, drop_topics, produce, produce_paced
from benchmarks.streaming.metrics import pct
from benchmarks.streaming.processes import kill
from pipeline.app.localstack import LOCAL_FETCH_MAX_WAIT_MS


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
    :mod:`benchmarks.streaming.faust_apps` ``relay`` (the worker's settings, batch messages per
    partition between the hops), paced like the latency phase. Returns p50/p99 seconds from
    send to the second hop, or None if the app did not start or wrote no result."""
    ns = f"bench.faust.relay.{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, [ns, ns + ".out"], partitions)
    warm: Messages = [(b"warm", b"{}")] * 200
    result = Path(tempfile.mkdtemp(prefix="sw-relay-")) / "result.json"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.streaming.faust_apps",
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
        kill(proc)
        drop_topics(bootstrap, [ns, ns + ".out"])
