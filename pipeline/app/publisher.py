"""Incident events out through confluent-kafka.

librdkafka batches, compresses and sends in its own threads, so a publish costs the event loop
a few microseconds; Faust's per-message send path cost about half a millisecond per incident
event (they carry the whole incident), which set the worker's tail latency. Delivery reports
come back on a poller thread and settle asyncio futures, so a step still waits for the broker
before it counts its events as published.

A message the broker or client refuses for good (too large, invalid, unknown topic, not
authorized) settles its future with :class:`Rejected`, whether ``produce`` raised or the
delivery report said so: sending it again would fail again, so callers degrade or
dead-letter it instead of failing the step. Any other error is transient (librdkafka has
already retried it until ``message.timeout.ms``) and settles with ``KafkaException``.
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


#: error codes after which the same message can never be delivered
PERMANENT_ERRORS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError._INVALID_ARG,
    }
)
#: of those, the ones a smaller message may get past
SIZE_ERRORS = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})


class Rejected(Exception):
    """A message refused for good (see module docstring)."""

    def __init__(self, err: KafkaError) -> None:
        super().__init__(f"{err.name()}: {err.str()}")
        self.code: int = err.code()
        #: the error's name, e.g. MSG_SIZE_TOO_LARGE (a bounded metric label)
        self.error: str = err.name()

    @property
    def too_large(self) -> bool:
        return self.code in SIZE_ERRORS


def failure(err: KafkaError) -> Exception:
    """The exception a send settles with for ``err``: :class:`Rejected` when permanent."""
    return Rejected(err) if err.code() in PERMANENT_ERRORS else KafkaException(err)


class Publisher:
    """Send keyed messages to one topic; ``send`` returns a future the broker's ack settles."""

    def __init__(
        self, client_config: dict[str, Any], topic: str, max_message_bytes: int | None = None
    ) -> None:
        self.topic = topic
        conf = {**client_config, **PUBLISH_CONFIG}
        if max_message_bytes is not None:
            conf["message.max.bytes"] = max_message_bytes
        self._producer = Producer(conf)
        #: the fatal error the producer raised (idempotence state lost), if any: it fails
        #: every message then queued and refuses new ones
        self.fatal: KafkaError | None = None
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="sw-publish", daemon=True)
        self._poller.start()

    async def send(
        self,
        *,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        topic: str | None = None,
    ) -> asyncio.Future[None]:
        """Queue one message (to ``topic``, by default the publisher's own)."""
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Any) -> None:
            loop.call_soon_threadsafe(_settle, acked, err)

        while True:
            try:
                self._producer.produce(
                    topic or self.topic, value, key=key, headers=headers, on_delivery=delivered
                )
                return acked
            except BufferError:  # librdkafka's queue is full: let the poller drain it
                await asyncio.sleep(0.005)
            except KafkaException as exc:
                err = exc.args[0]
                if not isinstance(err, KafkaError) or err.code() not in PERMANENT_ERRORS:
                    raise
                acked.set_exception(Rejected(err))
                return acked

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self._producer.poll(0.05)
            except KafkaException as exc:
                # confluent-kafka raises a fatal error from poll() instead of calling
                # error_cb; keep polling, so the delivery reports failing the queued
                # messages still settle their futures
                self.fatal = exc.args[0]

    def close(self, timeout_s: float = 10.0) -> int:
        """Deliver what is queued (up to ``timeout_s``); returns how many were not."""
        self._stop.set()
        self._poller.join()
        try:
            return int(self._producer.flush(timeout_s))
        except KafkaException:  # fatal: nothing more will be delivered
            return len(self._producer)


def _settle(acked: asyncio.Future[None], err: KafkaError | None) -> None:
    if acked.done():
        return
    if err is None:
        acked.set_result(None)
    else:
        acked.set_exception(failure(err))
