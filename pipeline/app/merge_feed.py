"""The merge topic, read by a consumer of its own (consumer group ``<app_id>-merge``).

Faust hands every partition a process reads to its agents through one delivery path, so a
record of the merge topic waited behind the raw and by-domain partitions' backlog: on the
bench storm a progress mark reached the merge stage ~1 s after it was sent (p90 ~4 s, up to
16 s) while a consumer of its own read the same marks 7 ms after (p90 9 ms). The merge
stage's input is small and latency-bound (progress marks pace the other domains, controls
must reach them within the skew), so it gets a confluent-kafka consumer in a thread of its
own, and the messages reach the event loop through a queue.

The group protocol picks the one process that runs the stage (the topic has one partition).
On assignment the consumer starts after the offset the stage's Redis checkpoint covers (no
offsets are committed to Kafka: the checkpoint is what counts; if Redis cannot say, it reads
from the beginning and the stage skips what it applied). On revocation the stage hands over
(writes its state) before the partition goes; a partition *lost* (the session expired) is
dropped without writing, since another process may own it already. Messages polled under
an earlier assignment are dropped.

Health: the thread keeps the owned partition's high watermark (librdkafka's cached value,
updated by every fetch: no extra request) for ``/healthz`` and the lag metric, and a thread
that fails makes :meth:`MergeFeed.take` raise, so the stage's failure ends the process as a
failure of any other stage does (the next owner resumes from Redis), instead of the stage
stopping unseen.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

log = structlog.get_logger("stormwatch.worker")

#: messages queued for the stage beyond which the consumer thread stops polling for a while
MAX_QUEUED = 20_000
#: longest wait for the stage to hand over when the partition is revoked
HAND_OVER_TIMEOUT_S = 60.0
#: the generation a failed consumer thread queues: :meth:`MergeFeed.take` raises on it
_FAILED = -1


class FeedStopped(RuntimeError):
    """The merge feed's consumer thread failed: the stage gets no more input."""


@dataclass(frozen=True)
class FeedMessage:
    """One consumed record, shaped like the ``message`` of a Faust event (what the merge
    stage, the dead-letter sender and liveness read)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class FeedEvent:
    """A consumed record as the stage's step takes it (``event.message``, ``event.value``)."""

    message: FeedMessage

    @property
    def value(self) -> bytes:
        return self.message.value


class MergeFeed:
    """A consumer thread feeding the merge topic's records to the event loop.

    ``start_offset`` (called in the consumer thread) is the first offset the stage has not
    applied, or None when unknown; ``hand_over`` (a coroutine, run on the loop) writes the
    stage's state before the partition is revoked; ``drop`` forgets it without writing.
    """

    def __init__(
        self,
        client_config: dict[str, Any],
        topic: str,
        group_id: str,
        start_offset: Callable[[], int | None],
        hand_over: Callable[[], Coroutine[Any, Any, None]],
        drop: Callable[[], Coroutine[Any, Any, None]],
        *,
        session_timeout_s: float = 10.0,
        fetch_max_wait_ms: int = 500,
        on_owned: Callable[[bool], None] | None = None,
    ) -> None:
        self.topic = topic
        self.conf = {
            **client_config,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": int(session_timeout_s * 1000),
            "heartbeat.interval.ms": int(min(3.0, session_timeout_s / 4) * 1000),
            "fetch.wait.max.ms": fetch_max_wait_ms,
            "log_level": 3,
        }
        self.start_offset = start_offset
        self.hand_over = hand_over
        self.drop = drop
        #: told (in the consumer thread) whether the stage runs here after each change
        self.on_owned = on_owned
        #: bumped on every assignment change; messages of an older one are dropped
        self.generation = 0
        self._queue: asyncio.Queue[tuple[int, FeedEvent | None]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # queued = delivered - taken; each counter has one writer (the consumer thread, the
        # event loop), so neither can lose an update to the other thread
        self._delivered = 0
        self._taken = 0
        #: the partitions assigned here -> high watermark (None: not known yet); replaced, never
        #: mutated, so the event loop reads a consistent one
        self._highwaters: dict[tuple[str, int], int | None] = {}
        self._failed: BaseException | None = None
        self._stop = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def queued(self) -> int:
        """Messages handed to the event loop and not yet taken by the stage."""
        return self._delivered - self._taken

    def highwaters(self) -> dict[tuple[str, int], int | None]:
        """``(topic, partition) -> high watermark`` of the partition the stage owns here
        (empty when another process runs the stage)."""
        return self._highwaters

    def start(self) -> None:
        """Start the consumer thread (on the event loop that will take the messages)."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._thread = threading.Thread(target=self._run, name="sw-merge-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Leave the group and stop the thread (no hand-over: shutting down, the stage's
        unwritten state is rebuilt from the topic by the next owner)."""
        self._closing = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    async def take(self, max_n: int, within_s: float) -> tuple[int, list[FeedEvent]]:
        """Up to ``max_n`` messages of the current assignment, and its generation (the step
        checks it again under its lock): waits for the first, then gathers what arrives
        within ``within_s``. Raises :class:`FeedStopped` once the consumer thread failed."""
        assert self._queue is not None, "start() first"
        out: list[FeedEvent] = []
        gen, event = await self._queue.get()
        deadline = time.monotonic() + within_s
        while True:
            if gen == _FAILED:
                raise FeedStopped(f"merge feed stopped: {self._failed}") from self._failed
            self._taken += 1
            if gen == self.generation and event is not None:
                out.append(event)
            if len(out) >= max_n:
                break
            try:
                gen, event = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    gen, event = await asyncio.wait_for(self._queue.get(), left)
                except TimeoutError:
                    break
        return self.generation, out

    # ------------------------------------------------------------------ consumer thread

    def _run(self) -> None:
        try:
            consumer = Consumer(self.conf)
        except Exception as exc:
            self._fail(exc)
            return
        try:
            consumer.subscribe(
                [self.topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            while not self._stop.is_set():
                if self.queued > MAX_QUEUED:
                    time.sleep(0.01)
                    continue
                msgs = consumer.consume(500, 0.1)
                for msg in msgs:
                    err = msg.error()
                    if err is not None:
                        if err.fatal():  # the consumer cannot go on: end the stage with it
                            raise KafkaException(err)
                        if err.code() != KafkaError._PARTITION_EOF:
                            log.warning("merge feed: consumer error", error=str(err))
                        continue
                    self._deliver(self.generation, msg)
                if self._highwaters:
                    self._highwaters = {tp: _highwater(consumer, tp) for tp in self._highwaters}
        except Exception as exc:
            if not self._closing:
                self._fail(exc)
        finally:
            self._highwaters = {}
            consumer.close()

    def _fail(self, exc: BaseException) -> None:
        """The stage stops getting input: end the stage with it (``take`` raises)."""
        log.error("merge feed stopped", error=str(exc))
        self._failed = exc
        if self._loop is not None and self._queue is not None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (_FAILED, None))

    def _deliver(self, gen: int, msg: Any) -> None:
        event = FeedEvent(
            FeedMessage(
                topic=msg.topic(),
                partition=msg.partition(),
                offset=msg.offset(),
                key=msg.key(),
                value=msg.value() or b"",
                headers=list(msg.headers() or []),
            )
        )
        self._delivered += 1
        assert self._loop is not None and self._queue is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (gen, event))

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        try:
            start = self.start_offset()
        except Exception as exc:  # Redis away: read it all, the stage skips what it has
            log.warning(
                "merge feed: checkpoint offset unknown; reading from the start", error=str(exc)
            )
            start = None
        for tp in partitions:
            tp.offset = start if start is not None else OFFSET_BEGINNING
        self.generation += 1
        self._highwaters = {(tp.topic, tp.partition): None for tp in partitions}
        self._own(bool(partitions))
        consumer.assign(partitions)
        log.info("merge stage assigned here", partitions=len(partitions), start=start)

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.generation += 1
        self._highwaters = {}
        self._own(False)
        if partitions and not self._closing and self._loop is not None:
            done = asyncio.run_coroutine_threadsafe(self.hand_over(), self._loop)
            try:
                done.result(HAND_OVER_TIMEOUT_S)
            except Exception as exc:
                log.warning("merge stage hand-over failed", error=str(exc))
        consumer.unassign()

    def _own(self, owned: bool) -> None:
        if self.on_owned is not None:
            self.on_owned(owned)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.generation += 1
        self._highwaters = {}
        self._own(False)
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self.drop(), self._loop)
        consumer.unassign()


def _highwater(consumer: Any, tp: tuple[str, int]) -> int | None:
    """The partition's high watermark as of the consumer's last fetch (None: not known)."""
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)
    except Exception:  # not fetched from yet
        return None
    return int(high) if high is not None and high >= 0 else None
