"""Incident events out through confluent-kafka.

librdkafka batches, compresses and sends in its own threads, so a publish costs the event loop
a few microseconds; Faust's per-message send path cost about half a millisecond per incident
event (they carry the whole incident), which set the worker's tail latency. Delivery reports
come back on a poller thread and settle asyncio futures, so a step still waits for the broker
before it counts its events as published.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

#: librdkafka settings of the publisher: every replica acknowledges; idempotence keeps each
#: incident's events in order and unduplicated across retries; murmur2 partitions keys as the
#: Java clients and aiokafka (Faust) do, so an incident keeps its partition across versions.
PUBLISH_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "partitioner": "murmur2_random",
    "linger.ms": 2,
    "log_level": 3,
}


class Publisher:
    """Send keyed messages to one topic; ``send`` returns a future the broker's ack settles."""

    def __init__(self, client_config: dict[str, Any], topic: str) -> None:
        self.topic = topic
        self._producer = Producer({**client_config, **PUBLISH_CONFIG})
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="sw-publish", daemon=True)
        self._poller.start()

    async def send(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Any) -> None:
            loop.call_soon_threadsafe(_settle, acked, err)

        while True:
            try:
                self._producer.produce(self.topic, value, key=key, on_delivery=delivered)
                return acked
            except BufferError:  # librdkafka's queue is full: let the poller drain it
                await asyncio.sleep(0.005)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def close(self, timeout_s: float = 10.0) -> int:
        """Deliver what is queued (up to ``timeout_s``); returns how many were not."""
        self._stop.set()
        self._poller.join()
        return int(self._producer.flush(timeout_s))


def _settle(acked: asyncio.Future[None], err: KafkaError | None) -> None:
    if acked.done():
        return
    if err is None:
        acked.set_result(None)
    else:
        acked.set_exception(KafkaException(err))
