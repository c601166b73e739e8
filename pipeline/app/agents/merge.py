"""Merge agent: per-domain incident summaries -> cross-domain groups -> ``incidents``.

Runs only when the topology is split into correlation domains (``worker.domains`` > 1). The
merge topic has one partition, read by a consumer of its own
(:class:`~pipeline.app.merge_feed.MergeFeed`, group ``<app_id>-merge``), so one process runs
the stage and a rebalance moves it. A step takes a batch of summaries, skips those its state
already applied (re-consumed after a crash), lets the :class:`~pipeline.domain.merge.Merger` unite
per-domain incidents one correlator would have made one, publishes the resulting events on
``incidents`` (it is their only writer: ``updated`` rate-limited per incident as on the
single-domain path, each a bounded view; refused ones degraded or dead-lettered) and sends
its controls to the domains' by-domain partitions. Its state, the offset it covers, the
records of what it published and the group memberships go to Redis at most every
``worker.commit_interval_s``; the offset in that state is where the next owner starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import structlog

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.consistency import StateGuard
from pipeline.app.dead_letters import DeadLetters
from pipeline.app.escalations import Escalations
from pipeline.app.event_sender import EventSender
from pipeline.app.merge_feed import FeedEvent, MergeFeed
from pipeline.app.metrics import Metrics
from pipeline.app.router import DomainRouter
from pipeline.app.routing import KIND_FEEDBACK, KIND_HEADER, KIND_PROGRESS
from pipeline.app.runbooks import runbook_index
from pipeline.app.store_retry import StoreRetry
from pipeline.app.summaries import progress_decoder, summary_decoder
from pipeline.config import Settings
from pipeline.domain.correlate.journal import MembershipOp, Merged
from pipeline.domain.event_view import EventLimits
from pipeline.domain.merge import Merger, Summary
from pipeline.domain.schemas import (
    Feedback,
    FeedbackAction,
    Incident,
    IncidentEvent,
    IncidentStatus,
    ResponderRef,
    encode,
)
from pipeline.domain.throttle import UpdateThrottle
from pipeline.domain.topology import Topology

log = structlog.get_logger("stormwatch.worker")

MERGE_CHECKPOINT = "merge"
MERGE_OFFSET = "merge-offset"
#: the owner of the escalations of what the merge stage publishes
MERGE_OWNER = "merge"
_control_encoder = msgspec.msgpack.Encoder()
_feedback_decoder = msgspec.json.Decoder(Feedback)
#: a domain that has sent nothing for this long (wall time) no longer holds the watermark back
IDLE_DOMAIN_S = 30.0


class MergeAgent:
    def __init__(
        self,
        settings: Settings,
        topology: Topology,
        store: RedisStore,
        retry: StoreRetry,
        router: DomainRouter,
        dead_letters: DeadLetters,
        guard: StateGuard,
        metrics: Metrics,
        batch_size: int,
    ) -> None:
        self.settings = settings
        self.topology = topology
        self.store = store
        self.retry = retry
        self.router = router
        self.dead_letters = dead_letters
        self.guard = guard
        self.metrics = metrics
        self.batch_size = batch_size
        w = settings.worker
        self.limits = EventLimits(max_bytes=w.max_event_bytes, max_alerts=w.max_event_alerts)
        self.throttle = UpdateThrottle(w.update_interval_s)
        #: group events carry their runbook like per-domain ones (docs/remediation.md)
        self.runbooks = runbook_index(settings, topology)
        #: recommends responders for group events (set by the worker when it recommends)
        self.responders: Callable[[Incident], list[ResponderRef]] | None = None
        self.lock = asyncio.Lock()
        self.merger: Merger | None = None
        #: highest merge-topic offset the in-memory state has applied
        self.applied = -1
        #: by-domain partition -> (newest event time it reported, wall time it did)
        self.reached: dict[int, tuple[float, float]] = {}
        self.sender = EventSender(settings, dead_letters, metrics, self.limits)
        #: the merge topic's consumer (its generation tells whether a batch is still ours)
        self.feed: MergeFeed | None = None
        #: told the batches the stage handled (liveness: ``/healthz`` and the lag metric)
        self.processed: Callable[[Sequence[FeedEvent]], None] | None = None
        self._unwritten = False
        self._records: dict[str, bytes] = {}
        self._closed: set[str] = set()
        self._membership: list[MembershipOp] = []
        self._last_commit = time.monotonic()
        #: escalation of the incidents it publishes (None: no Redis)
        self.escalations: Escalations | None = None

    def start_offset(self) -> int | None:
        """The first merge-topic offset the stage's Redis checkpoint does not cover (None:
        no checkpoint yet); called by the feed's thread when the partition is assigned."""
        raw = self.store.load_checkpoint(MERGE_OFFSET)
        return int(raw) + 1 if raw else None

    async def run(self, feed: MergeFeed) -> None:
        """Step over the feed's batches while the process runs."""
        self.feed = feed
        within = self.settings.worker.batch_timeout_s
        while True:
            generation, events = await feed.take(self.batch_size, within)
            if not events:
                continue
            self.metrics.messages.labels(events[0].message.topic).inc(len(events))
            await self.step(events, generation)
            if self.processed is not None:
                self.processed(events)

    async def step(self, events: Sequence[FeedEvent], generation: int | None = None) -> None:
        async with self.lock:
            feed = self.feed
            if generation is not None and feed is not None and generation != feed.generation:
                return  # revoked meanwhile: not ours
            if self.merger is None:
                await self.retry.call("restore", self._restore)
            merger = self.merger
            assert merger is not None
            fresh = [e for e in events if e.message.offset > self.applied]
            feedback: list[bytes] = []
            summaries: list[Summary] = []
            progress: dict[int, float] = {}
            marks_sent: list[float] = []
            for e in fresh:
                try:
                    kind = dict(e.message.headers).get(KIND_HEADER)
                    if kind == KIND_PROGRESS:
                        mark = progress_decoder.decode(e.value)
                        progress[mark.partition] = mark.event_time
                        if mark.sent:
                            marks_sent.append(mark.sent)
                    elif kind == KIND_FEEDBACK:
                        feedback.append(e.value)
                        _feedback_decoder.decode(e.value)
                    else:
                        summaries.append(summary_decoder.decode(e.value))
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    if feedback and feedback[-1] is e.value:
                        feedback.pop()
                    await self.dead_letters.send(e, "merge", "invalid", str(exc))
            started = time.perf_counter()
            with self.guard.changing():
                await self._fan_out(feedback)
                out = merger.on_batch(summaries)
                merger.advance(self._watermark(summaries))
                await self._publish(out.events)
                if self.escalations is not None:
                    acks = [_feedback_decoder.decode(raw) for raw in feedback]
                    await self.escalations.observe(
                        MERGE_OWNER,
                        out.events,
                        [fb for fb in acks if fb.action is FeedbackAction.ack],
                        time.time(),
                    )
                await self._send_controls(out)
                if progress:  # after the controls: a domain paced by it finds them first
                    await self.retry.call("progress", self.store.set_domain_progress, progress)
                    recorded = time.time()
                    for sent in marks_sent:
                        self.metrics.mark_delay.observe(max(0.0, recorded - sent))
                self._membership.extend(Merged(source=a, target=b) for a, b in out.unions)
                if fresh:
                    self.applied = max(self.applied, max(e.message.offset for e in fresh))
                    self._unwritten = True
            self.metrics.stage_seconds.labels("merge").observe(time.perf_counter() - started)
            await self._maybe_commit()

    async def tick(self) -> None:
        """Publish held updates that are due, and write the state when it is time."""
        async with self.lock:
            if self.merger is None:
                return
            due = self.throttle.due(time.monotonic())
            if due:
                with self.guard.changing():
                    await self._send(due)
            await self._maybe_commit()

    def _restore(self) -> None:
        merger = Merger(
            self.topology, self.settings.correlation, self.limits, self.runbooks, self.responders
        )
        data = self.store.load_checkpoint(MERGE_CHECKPOINT)
        offset = self.store.load_checkpoint(MERGE_OFFSET)
        if data:
            merger.restore(data)
        self.applied = int(offset) if offset else -1
        self.merger = merger

    def _watermark(self, summaries: list[Summary]) -> float:
        """Event time every domain still sending has reached, less the allowed lateness."""
        wall = time.monotonic()
        for sm in summaries:
            t, _ = self.reached.get(sm.partition, (float("-inf"), wall))
            self.reached[sm.partition] = (max(t, sm.last_t), wall)
        live = [t for t, at in self.reached.values() if wall - at < IDLE_DOMAIN_S]
        if not live:
            return float("-inf")
        return min(live) - self.settings.correlation.allowed_lateness_s

    async def _publish(self, events: list[IncidentEvent]) -> None:
        await self._send(self.throttle.admit(events, time.monotonic()))

    async def _send(self, events: list[IncidentEvent]) -> None:
        for ev in events:
            if ev.incident.status is IncidentStatus.resolved or ev.incident.merged_into:
                self._closed.add(ev.incident.id)
            else:
                self._closed.discard(ev.incident.id)
        self._records.update(await self.sender.send(events))

    async def _fan_out(self, feedback: list[bytes]) -> None:
        """Feedback on a published incident to the partition of each per-domain member."""
        assert self.merger is not None
        sends = []
        for raw in feedback:
            for partition, fb in self.merger.fan_out(_feedback_decoder.decode(raw)):
                sends.append(
                    self.router.send_feedback(fb.incident_id, encode(fb), partition=partition)
                )
        if sends:
            await asyncio.gather(*sends)

    async def _send_controls(self, out: Any) -> None:
        """Controls to the domains' control streams in Redis (idempotent if a crash makes the
        stage send them again: span starts only move earlier, a reopen is undone once)."""
        controls = [
            (c.partition % self.router.partitions, _control_encoder.encode(c)) for c in out.controls
        ]
        if controls:
            await self.retry.call("controls", self.store.append_controls, controls)

    async def _maybe_commit(self, force: bool = False) -> bool:
        if not self._unwritten and not self._records and not force:
            return True
        interval = self.settings.worker.commit_interval_s
        if not force and time.monotonic() - self._last_commit < interval:
            return True
        return await self.commit_now()

    async def commit_now(self) -> bool:
        """Write the state, the offset it covers, records and memberships. A failed write is
        retried at the next commit."""
        if self.merger is None:
            return True
        self._last_commit = time.monotonic()
        records, closed, membership = self._records, self._closed, self._membership
        checkpoints = {
            MERGE_CHECKPOINT: self.merger.snapshot(),
            MERGE_OFFSET: str(self.applied).encode(),
        }

        def write() -> None:
            self.store.commit(
                dedup_states={},
                checkpoints=checkpoints,
                incidents=records,
                closed_incidents=sorted(closed),
                membership=membership,
            )

        try:
            await asyncio.to_thread(write)
        except Exception as exc:
            self.metrics.persist_failures.inc()
            log.warning("writing merge state failed; retrying later", error=str(exc))
            return False
        self._records, self._closed, self._membership = {}, set(), []
        self._unwritten = False
        return True

    async def hand_over(self) -> None:
        """The merge partition moves away: write the state, then forget it."""
        async with self.lock:
            if self.merger is not None:
                held = self.throttle.drain()
                if held:
                    with self.guard.changing():
                        await self._send(held)
                await self.commit_now()
            self.merger = None
            self.applied = -1

    async def drop(self) -> None:
        """The partition was lost (another process may run the stage already): forget the
        state without writing it."""
        async with self.lock:
            self.merger = None
            self.applied = -1
            self.throttle.drain()
            self._records, self._closed, self._membership = {}, set(), []
            self._unwritten = False

    def close(self) -> None:
        self.sender.close()
