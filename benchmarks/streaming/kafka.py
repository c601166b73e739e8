"""Kafka client helpers of the streaming bench: topics, producers (flat out and paced), a
timed consumer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.streaming.console import log

Messages = Sequence[tuple[bytes, bytes]]


def create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    """Create ``names`` with ``partitions`` partitions each."""
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


#: messages per produced record batch of a backlog: a broker returns whole batches, so this
#: is the step in which a consumer reads each raw partition. Alerts produced as they happen
#: (Alertmanager through the gateway, emitters with a few ms of linger) come in batches of a
#: few messages; a bulk load in librdkafka's default 10,000 would make each raw partition of
#: the sparse bench storm arrive in steps of ~30,000 s of event time, which no one emitting
#: live produces
BACKLOG_BATCH = 500


def _producer(bootstrap: str, batch_messages: int = 10_000) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "batch.num.messages": batch_messages,
        }
    )


def produce(bootstrap: str, topic: str, messages: Messages, batch_messages: int = 10_000) -> float:
    """Produce all messages as fast as possible, in record batches of at most
    ``batch_messages``; return the rate (messages/s incl. flush)."""
    producer = _producer(bootstrap, batch_messages)
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
    """Consume ``count`` messages of ``topic`` from the start; messages/s from the first."""
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
    """``n`` messages, repeating ``messages`` as often as needed."""
    return [messages[i % len(messages)] for i in range(n)]
