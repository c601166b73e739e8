"""The insights maintained from the topics: ``incidents`` (``resolved`` events, as pagers see
them: with the topology split into domains the merge stage is their only writer) and
``feedback``, fed one message at a time into :class:`~pipeline.domain.insights.Insights`.

A thread of its own runs a confluent-kafka consumer that is *assigned* every partition of
both topics (no consumer group: the offsets live with the state). The state and the offset
of the last message it covers, per partition, are written to Redis as one versioned document
(checkpoint ``insights``, :mod:`pipeline.domain.insights.checkpoint`) every
``worker.commit_interval_s``; that write is the input's acknowledgement. A restarted process
loads the document and reads on from the offsets after it, so every message is in the state
exactly once. A write that fails is retried at the next interval while the feed goes on
(the document in Redis stays a consistent older point). A message that does not decode is
logged, counted (``stormwatch_insights_skipped_total``) and skipped; it stays in its topic
(bad feedback is also dead-lettered by the feedback agent).

Every ``insights.refresh_s`` the thread builds the report from the state (a fold of the
bounded counters, no scan of Redis) and hands it to ``on_report``.

**One feed per cluster.** Every process with the ``insights`` role runs the thread, but only
the holder of a Redis lease (:class:`~pipeline.adapters.lease.RedisLease`, ``insights.lease_s``,
renewed every third of it) feeds: the others stand by, trying for the lease as often, and
take over from the document when it lapses (its holder died, hung or lost Redis) or is given
up (its holder stopped). The document is written only while the lease is held (checked and
written in one script), so a holder that lost it never overwrites its successor's state; it
notices at its next renewal or write, drops its state and stands by.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from pipeline.adapters.redis_store import RedisStore
from pipeline.config import Settings
from pipeline.domain.insights import Insights, InsightsReport
from pipeline.domain.insights import checkpoint as ckpt
from pipeline.domain.schemas import EventType, Feedback, IncidentEvent
from pipeline.domain.topology import Topology

log = structlog.get_logger("stormwatch.insights")

CHECKPOINT = "insights"


class _Kind(msgspec.Struct):
    type: str


#: the event's type alone: only ``resolved`` events are decoded whole
_kind = msgspec.json.Decoder(_Kind)
_event = msgspec.json.Decoder(IncidentEvent)
_feedback = msgspec.json.Decoder(Feedback)
#: messages taken per poll
_BATCH = 500
_POLL_S = 0.2


class Lease(Protocol):
    """What the feed needs of its lease (:class:`pipeline.adapters.lease.RedisLease`)."""

    key: str
    token: str

    def hold(self) -> bool: ...

    def release(self) -> None: ...


class LostLease(Exception):
    """Another process holds the insights lease now: this one stops feeding."""


class InsightsFeed:
    """Feeds the insights from ``incidents`` and ``feedback`` on a thread of its own."""

    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        topology: Topology,
        on_report: Callable[[InsightsReport], None],
        on_skip: Callable[[str], None] = lambda _topic: None,
        on_write_failure: Callable[[], None] = lambda: None,
        lease: Lease | None = None,
        on_lead: Callable[[bool], None] = lambda _leads: None,
    ) -> None:
        """``lease``: feed only while holding it (None: always, for a single process);
        ``on_lead`` hears when this process starts (True) and stops (False) feeding."""
        self.settings = settings
        self.store = store
        self.topology = topology
        self.on_report = on_report
        self.on_skip = on_skip
        self.on_write_failure = on_write_failure
        self.lease = lease
        self.on_lead = on_lead
        #: renew the lease (and, standing by, try for it) this often
        self.renew_s = settings.insights.lease_s / 3
        self.topics = (settings.topics.incidents, settings.topics.feedback)
        self.insights = Insights(team_of=topology.team)
        #: (topic, partition) -> offset of the last message fed
        self.fed: dict[tuple[str, int], int] = {}
        self.written: dict[tuple[str, int], int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="stormwatch-insights", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop feeding and write the state once more."""
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout_s)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        delay = 1.0
        while not self.stop.is_set():
            if not self._wait_for_lease():
                return
            self.on_lead(True)
            try:
                self._feed_until_stopped()
                return
            except LostLease:
                log.warning("insights lease lost: another process feeds the insights now")
                delay = 1.0
            except Exception as exc:  # broker or Redis trouble: start again from the document
                log.error("insights feed failed; starting again", error=str(exc))
                self.stop.wait(delay)
                delay = min(30.0, delay * 2)
            finally:
                self.on_lead(False)

    def _wait_for_lease(self) -> bool:
        """Stand by until this process holds the lease (False when stopped first)."""
        if self.lease is None:
            return True
        said = False
        while not self.stop.is_set():
            try:
                if self.lease.hold():
                    log.info("insights lease taken: this process feeds the insights")
                    return True
                if not said:
                    log.info("insights standby: another process holds the insights lease")
                    said = True
            except Exception as exc:
                log.warning("insights lease unavailable; retrying", error=str(exc))
            self.stop.wait(self.renew_s)
        return False

    def _renew(self) -> None:
        if self.lease is not None and not self.lease.hold():
            raise LostLease

    def _feed_until_stopped(self) -> None:
        self._restore()
        consumer = self._consumer()
        try:
            self._assign(consumer)
            last_write = last_report = last_renew = time.monotonic()
            self._report()
            while not self.stop.is_set():
                for msg in consumer.consume(_BATCH, timeout=_POLL_S):
                    self.feed(msg)
                now = time.monotonic()
                if now - last_renew >= self.renew_s:
                    self._renew()
                    last_renew = now
                if now - last_write >= self.settings.worker.commit_interval_s:
                    self.write()
                    last_write = now
                if now - last_report >= self.settings.insights.refresh_s:
                    self._report()
                    last_report = now
            self.write()
        finally:
            consumer.close()
        if self.lease is not None:  # stopping: a stand-by takes over at once
            try:
                self.lease.release()
            except Exception as exc:
                log.warning("giving up the insights lease failed", error=str(exc))

    def _restore(self) -> None:
        """Load the document, waiting for Redis as long as it is away."""
        delay = 0.1
        while not self.stop.is_set():
            try:
                data = self.store.load_checkpoint(CHECKPOINT)
                break
            except Exception as exc:
                log.warning("insights checkpoint unreadable; retrying", error=str(exc))
                self.stop.wait(delay)
                delay = min(5.0, delay * 2)
        else:
            return
        if data:
            # a document this version cannot read is an error to fix, not history to drop
            self.insights, self.fed = ckpt.load(data, team_of=self.topology.team)
        else:
            self.insights, self.fed = Insights(team_of=self.topology.team), {}
        self.written = dict(self.fed)
        if data:
            log.info("insights restored", partitions=len(self.fed))

    def _consumer(self) -> Consumer:
        w = self.settings.worker
        return Consumer(
            {
                **self.settings.kafka.confluent_config(),
                "group.id": f"{w.app_id}-insights",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "fetch.wait.max.ms": w.fetch_max_wait_ms,
            }
        )

    def _assign(self, consumer: Consumer) -> None:
        """Every partition of both topics, from the offset after the one the state covers."""
        meta = consumer.list_topics(timeout=30)
        tps = []
        for topic in self.topics:
            info = meta.topics.get(topic)
            if info is None or info.error is not None:
                raise RuntimeError(f"topic {topic!r} is not available: {info and info.error}")
            for p in sorted(info.partitions):
                done = self.fed.get((topic, p))
                start = done + 1 if done is not None else OFFSET_BEGINNING
                tps.append(TopicPartition(topic, p, start))
        consumer.assign(tps)

    def feed(self, msg: Any) -> None:
        """One message into the state (errors from the broker are logged, not fed)."""
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("insights consumer error", error=str(err))
            return
        topic, value = msg.topic(), msg.value() or b""
        try:
            if topic == self.topics[0]:
                if _kind.decode(value).type == EventType.resolved.value:
                    self.insights.observe_event(_event.decode(value))
            else:
                self.insights.observe_feedback(_feedback.decode(value))
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            self.on_skip(topic)
            log.warning("insights skipped a message", topic=topic, error=str(exc)[:200])
        self.fed[(topic, msg.partition())] = msg.offset()

    def write(self) -> bool:
        """The state and the offsets it covers to Redis (nothing new: nothing to write);
        raises :class:`LostLease` when another process holds the lease."""
        if self.fed == self.written:
            return True
        offsets = dict(self.fed)
        data = ckpt.dump(self.insights, offsets)
        try:
            if self.lease is None:
                self.store.save_checkpoint(CHECKPOINT, data)
            elif not self.store.save_checkpoint_held(
                CHECKPOINT, data, self.lease.key, self.lease.token
            ):
                raise LostLease
        except LostLease:
            raise
        except Exception as exc:
            self.on_write_failure()
            log.warning("writing the insights state failed; retrying later", error=str(exc))
            return False
        self.written = offsets
        return True

    def _report(self) -> None:
        self.on_report(self.insights.report(self.topology.graph))
