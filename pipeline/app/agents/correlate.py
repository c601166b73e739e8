"""Correlate agent: by-domain topic -> dedup, score, correlate, lifecycle -> ``incidents``.

A step takes a few by-domain messages of any of this process's partitions. Per partition:
restore the state on first use; skip messages its state already applied (re-consumed after a
crash); hold alerts back until every input partition still behind has reached their event
time (:mod:`pipeline.domain.alignment`); apply the routed feedback, then the released alerts
in event-time order (Redis dedup states
read once for the whole step, overlaid with those not written yet). The step publishes its
incident events at once and is acknowledged only after the group commit wrote its state
(:mod:`pipeline.app.group_commit`). Reads happen before any state changes, so they may wait
for Redis; a failure after the state changed exits the process (:mod:`consistency`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import structlog
from faust.types import EventT

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.backpressure import IngestPause, RouteCredit
from pipeline.app.commits import overlay
from pipeline.app.consistency import StateGuard
from pipeline.app.group_commit import GroupCommit
from pipeline.app.incident_events import IncidentPublishing
from pipeline.app.liveness import Liveness
from pipeline.app.metrics import Metrics
from pipeline.app.partitions import PartitionStates
from pipeline.app.responders import Responders
from pipeline.app.steps import Step, decode_step
from pipeline.app.store_retry import StoreRetry
from pipeline.app.transport import highwater
from pipeline.config import Settings
from pipeline.domain.dedup import fingerprints_of
from pipeline.domain.merge import Control, apply_control
from pipeline.domain.pipeline import AlertPipeline
from pipeline.domain.schemas import Feedback, IncidentEvent
from pipeline.domain.scoring import AlertScorer
from pipeline.domain.topology import Topology

log = structlog.get_logger("stormwatch.worker")
_feedback_decoder = msgspec.json.Decoder(Feedback)
_control_decoder = msgspec.msgpack.Decoder(Control)


class CorrelateAgent:
    def __init__(
        self,
        settings: Settings,
        topology: Topology,
        store: RedisStore,
        scorer: AlertScorer,
        states: PartitionStates,
        retry: StoreRetry,
        publishing: IncidentPublishing,
        commit: GroupCommit,
        guard: StateGuard,
        lock: asyncio.Lock,
        credit: RouteCredit,
        pause: IngestPause,
        liveness: Liveness,
        metrics: Metrics,
        batch_size: int,
    ) -> None:
        self.settings = settings
        self.topology = topology
        self.store = store
        self.scorer = scorer
        self.states = states
        self.retry = retry
        self.publishing = publishing
        self.commit = commit
        self.guard = guard
        self.lock = lock
        self.credit = credit
        self.pause = pause
        self.liveness = liveness
        self.metrics = metrics
        #: by-domain messages per step
        self.batch_size = batch_size
        #: read the merge stage's controls (the topology is split into domains)
        self.controls = False
        #: the domains' progress as the last step read it
        self.progress_seen: dict[int, float] = {}
        #: learns who resolves what from resolutions (None: no recommendations)
        self.responders: Responders | None = None
        #: the consumer and by-domain topic (split topologies: whether a partition lags)
        self.consumer: Callable[[], Any] | None = None
        self.by_domain_topic = ""
        #: called after each step (the worker re-aligns raw partitions: released alerts may
        #: let a held one go)
        self.after_step: Callable[[], None] | None = None

    async def run(self, stream: Any) -> None:
        self.commit.stream = stream  # acknowledges once a step's state is written
        within = self.settings.worker.batch_timeout_s
        async for events in stream.noack_take(self.batch_size, within=within):
            if events:
                self.metrics.messages.labels(events[0].message.topic).inc(len(events))
            await self.step(events)
            self.liveness.processed(events)
            await self.drain_ready()

    async def drain_ready(self) -> None:
        """Step the partitions whose last step left released alerts for the next
        (``worker.max_step_alerts``), yielding to the other agents between steps."""
        while ready := self.states.ready():
            await asyncio.sleep(0)
            await self.step([], idle=ready)

    async def step(self, events: list[EventT], idle: Iterable[int] = ()) -> None:
        """One correlate step over every partition in the batch (and the ``idle`` ones, which
        may release held alerts without a message): one Redis read and one publish round;
        the state goes to Redis with the next group commit."""
        by_partition: dict[int, list[EventT]] = defaultdict(list)
        for event in events:
            by_partition[event.message.partition].append(event)
        async with self.lock:
            # an idle partition only if still here (a hand-over may have taken it meanwhile)
            for p in idle:
                if p in self.states.pipelines and p not in by_partition:
                    by_partition[p] = []
            if not by_partition:
                return
            # reads first: until they are done nothing has changed, so they may wait for Redis
            for p in by_partition:
                if p not in self.states.pipelines:
                    await self.retry.call("restore", self.states.pipeline, p)
            steps = [
                decode_step(p, self.states.pipeline(p), self.states.applied.get(p, -1), evs)
                for p, evs in by_partition.items()
            ]
            progress: dict[int, float] = {}
            if self.controls and self.consumer is not None:
                for step in steps:
                    self.states.lagging[step.partition] = self._lagging(step)
            if self.controls:
                for step in steps:
                    await self._read_controls(step)
                progress = await self.retry.call("progress", self.store.domain_progress)
                self.progress_seen = progress
            forced = sum(a.forced for a in self.states.aligners.values())
            for step in steps:
                self.credit.received(step.partition, len(step.alerts))
                self.states.align(step, self._pace(step.partition, progress))
            self.metrics.alerts_released_early.inc(
                sum(a.forced for a in self.states.aligners.values()) - forced
            )
            self.metrics.alerts_held.set(self.states.held())
            self.metrics.partitions_paced.set(self.states.paced())
            started = time.perf_counter()
            fps = [fingerprints_of(step.alerts) for step in steps]
            unwritten = self.commit.unsaved.dedup_view()
            known = await self.retry.call(
                "dedup", self.store.dedup_states, [fp for part in fps for fp in part]
            )
            overlay(known, unwritten)
            self.metrics.stage_seconds.labels("dedup").observe(time.perf_counter() - started)
            with self.guard.changing():
                for step, step_fps in zip(steps, fps, strict=True):
                    self._apply_feedback(step)
                    self._correlate(step, known, step_fps)
                await self.publishing.publish(steps)
                self.commit.add_messages(events)
            for step in steps:
                # alerts held for alignment still wait: they count until released
                self.credit.correlated(step.partition, len(step.alerts))
            self.pause.maybe_resume()
            if self.after_step is not None:
                self.after_step()
            await self.commit.maybe_commit()

    def _apply_feedback(self, step: Step) -> None:
        """Apply the step's feedback, then the merge stage's controls (before its alerts), and
        note its offset as applied."""
        for raw in step.feedback:
            step.events.extend(self._feedback(step.pipe, raw))
        for raw in step.controls:
            step.events.extend(apply_control(step.pipe, _control_decoder.decode(raw)))
        if step.controls_upto is not None:
            self.states.controls_applied[step.partition] = step.controls_upto
        applied = self.states.applied
        applied[step.partition] = max(applied.get(step.partition, -1), step.offset)

    def _lagging(self, step: Step) -> bool:
        """Messages of the step's partition wait beyond this step."""
        assert self.consumer is not None
        hw = highwater(self.consumer(), self.by_domain_topic, step.partition)
        applied = max(step.offset, self.states.applied.get(step.partition, -1))
        return hw is None or applied + 1 < hw

    async def release_if_paced(self) -> None:
        """While partitions hold alerts back, step them as soon as the other domains'
        progress moved (each round lets a paced domain on by ``max_domain_skew_s``: on a
        backlog, waiting for the next message or tick would make pacing the bottleneck), or
        at once if their last step left released alerts for the next (``max_step_alerts``)."""
        if not self.states.held():
            return
        if self.states.ready():  # left by the step bound: on without waiting for anything
            await self.drain_ready()
            return
        try:
            progress = await asyncio.to_thread(self.store.domain_progress)
        except Exception:  # Redis away: the next step waits for it properly
            return
        if progress != self.progress_seen:
            await self.release_held()

    async def release_held(self) -> None:
        """A step for partitions holding alerts back, with no message: what they wait for
        (other partitions' marks, other domains' progress) may have come meanwhile."""
        held = [
            p for p, al in self.states.aligners.items() if len(al) and p in self.states.pipelines
        ]
        if held:
            await self.step([], idle=held)
            await self.drain_ready()

    def _pace(self, partition: int, progress: dict[int, float]) -> float:
        """How far the partition may correlate: the slowest other domain's progress as the
        merge stage has seen it, plus ``worker.max_domain_skew_s`` (inf: not split)."""
        others = [t for p, t in progress.items() if p != partition]
        return min(others) + self.settings.worker.max_domain_skew_s if others else math.inf

    async def _read_controls(self, step: Step) -> None:
        """The merge stage's controls for the partition not applied yet. They come through
        Redis, not behind the alerts queued on the by-domain topic: a control must reach the
        domain's correlator before it has gone far past the event time it is about."""
        after = self.states.controls_applied.get(step.partition, "0")
        rows = await self.retry.call("controls", self.store.read_controls, step.partition, after)
        if rows:
            step.controls = []
            for _, data in rows:
                try:
                    _control_decoder.decode(data)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    log.error("merge-stage control skipped", error=str(exc))
                    continue
                step.controls.append(data)
            step.controls_upto = rows[-1][0]

    def _feedback(self, pipe: AlertPipeline, raw: bytes) -> list[IncidentEvent]:
        fb = _feedback_decoder.decode(raw)
        inc = pipe.incident(fb.incident_id)
        if inc is not None:
            for update in self.scorer.learn(inc, fb):
                self.metrics.model_updates.labels(getattr(update, "model", "scorer")).inc()
                log.info("model updated", update=repr(update))
            if self.responders is not None and self.responders.learn(inc, fb):
                self.metrics.model_updates.labels("responders").inc()
        self.metrics.stage_items.labels("feedback", "applied" if inc else "unknown").inc()
        return pipe.feedback(fb)

    def _correlate(self, step: Step, known: dict[str, str | None], fps: list[str]) -> None:
        started = time.perf_counter()
        if self.settings.worker.clock == "event":  # group a backlog as it happened
            tick_s = self.settings.worker.tick_interval_s
            outcome = step.pipe.process_in_event_time(step.alerts, known, fps, tick_s)
        else:
            outcome = step.pipe.process(step.alerts, known, fps)
        if step.alerts:
            newest = step.alerts[-1].epoch  # decode_step sorted them by event time
            clock = self.states.event_clock
            clock[step.partition] = max(clock.get(step.partition, 0.0), newest)
        for ev in outcome.events:
            inc = ev.incident
            if not inc.domain and inc.alerts:
                inc.domain = self.topology.domain(inc.alerts[0].service)
        self.metrics.stage_seconds.labels("correlate").observe(time.perf_counter() - started)
        self.metrics.stage_items.labels("dedup", "duplicate").inc(outcome.duplicates)
        self.metrics.stage_items.labels("dedup", "ok").inc(outcome.received - outcome.duplicates)
        self.metrics.scores(outcome.scores)
        step.events.extend(outcome.events)
        step.dedup_states = outcome.dedup_states
        step.membership = step.pipe.take_membership()  # with the feedback's, applied first
