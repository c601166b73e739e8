"""The Faust application: agents, timers and web pages around the pure stage chain.

Flow: ``alerts.raw`` -(ingest: normalize, DLQ)-> ``<app>-alerts-by-domain``, one batch
message per owning partition of the alerts' correlation domains (:mod:`pipeline.app.routing`)
-(correlate: dedup, score, correlate, lifecycle)-> ``incidents``.
Feedback is routed onto the same by-domain topic, so the worker that owns an incident's
domain applies it; a correlate step applies the feedback it reads before that step's alerts
(a step spans a few batches, milliseconds apart). Each step publishes its incident events at
once; its state is written to Redis with the other steps of the last
``worker.commit_interval_s`` (one transaction per partition, :mod:`pipeline.app.commits`), and
only then are its messages acknowledged: a crash re-consumes, never loses, and the checkpoint's
offset keeps a re-consumed message from being applied twice.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import faust
import msgspec
import structlog
from faust.types import TP, EventT
from prometheus_client import CollectorRegistry, generate_latest

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.backpressure import RouteCredit
from pipeline.app.commits import Batch, Unsaved, overlay
from pipeline.app.health import Progress, batch_offsets
from pipeline.app.metrics import Metrics
from pipeline.app.publisher import Publisher
from pipeline.app.routing import (
    KIND_ALERTS,
    KIND_FEEDBACK,
    KIND_HEADER,
    decode_batch,
    domain_partition,
    encode_batches,
)
from pipeline.app.topics import repartition_topic
from pipeline.app.transport import use_tuned_transport
from pipeline.config import Settings
from pipeline.domain.dedup import fingerprints_of
from pipeline.domain.normalize import NormalizeError, normalize
from pipeline.domain.pipeline import AlertPipeline
from pipeline.domain.schemas import (
    Alert,
    DeadLetter,
    EventType,
    Feedback,
    IncidentEvent,
    IncidentStatus,
    MetricSample,
    encode,
)
from pipeline.domain.scoring import AlertScorer
from pipeline.domain.throttle import UpdateThrottle
from pipeline.domain.topology import Topology

_T = TypeVar("_T")
log = structlog.get_logger("stormwatch.worker")

ARRIVAL_HEADER = "stormwatch-arrival"
MODELS_CHECKPOINT = "models:scorer"
DETECTORS_CHECKPOINT = "models:detectors"
#: period of the event-loop lag probe (``stormwatch_event_loop_lag_seconds``)
LAG_PROBE_S = 0.05

_alert_decoder = msgspec.json.Decoder(Alert)
_feedback_decoder = msgspec.json.Decoder(Feedback)
_sample_decoder = msgspec.json.Decoder(MetricSample)


def _headers(event: EventT) -> dict[str, bytes]:
    raw: Any = event.message.headers or []
    items: Iterable[tuple[str, bytes]] = raw.items() if isinstance(raw, dict) else raw
    return dict(items)


class Worker:
    """Builds the Faust app for one worker process and holds its per-partition state."""

    def __init__(
        self,
        settings: Settings,
        *,
        topology: Topology,
        store: RedisStore,
        registry: CollectorRegistry | None = None,
        route_partitions: int | None = None,
        on_fatal: Callable[[BaseException], NoReturn] | None = None,
    ) -> None:
        self.settings = settings
        #: called when a step fails after changing in-memory state (default: exit at once)
        self.on_fatal = on_fatal or exit_inconsistent
        #: partitions of the by-domain topic (its real count, which may differ from the setting)
        self.route_partitions = route_partitions or settings.topics.partitions
        self.roles = settings.worker.role_set
        self.topology = topology
        self.store = store
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.pipelines: dict[int, AlertPipeline] = {}
        self.throttles: dict[int, UpdateThrottle] = {}
        self.event_clock: dict[int, float] = {}
        self.lock = asyncio.Lock()
        self.progress = Progress(self.settings.worker.stall_after_s)
        self.credit = RouteCredit(self.settings.worker.max_ingest_ahead)
        self.ingest_paused: tuple[float, set[TP]] | None = None
        self.unsaved = Unsaved()
        #: by-domain partition -> highest offset its in-memory state has applied
        self.applied: dict[int, int] = {}
        #: False while a correlate step or tick is half-way (its state must not be written)
        self.consistent = True
        self.last_commit = time.monotonic()
        self.committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sw-commit")
        self.writing: asyncio.Task[bool] | None = None
        self.last_write: Future[None] | None = None
        self.correlate_stream: Any = None
        self.scorer = self._restore_scorer()
        self.detectors = self._restore_detectors()
        self.app = self._build_app()

    # --- state -----------------------------------------------------------------------------

    def _restore_scorer(self) -> AlertScorer:
        data = self.store.load_checkpoint(MODELS_CHECKPOINT)
        s = self.settings.scoring
        return AlertScorer.restore(data, s) if data else AlertScorer(s)

    def _restore_detectors(self) -> Any:
        from pipeline.domain.detectors import DetectorBank

        data = self.store.load_checkpoint(DETECTORS_CHECKPOINT)
        s = self.settings.detection
        return DetectorBank.restore(data, s) if data else DetectorBank(s)

    def pipeline_for(self, partition: int) -> AlertPipeline:
        """The stage chain for a partition, restored from its checkpoint on first use."""
        pipe = self.pipelines.get(partition)
        if pipe is None:
            data = self.store.load_checkpoint(f"pipeline:{partition}")
            offset = self.store.load_checkpoint(f"offset:{partition}")
            held = self.store.load_checkpoint(f"held:{partition}")
            pipe = AlertPipeline(
                self.topology, correlation=self.settings.correlation, scorer=self.scorer
            )
            if data:
                pipe.restore(data)
            throttle = self.throttle_for(partition)
            for iid in _held_decoder.decode(held) if held else []:
                inc = pipe.incident(iid)
                if inc is not None:  # an update held when the last owner stopped: due now
                    throttle.hold(
                        IncidentEvent(type=EventType.updated, incident=inc, at=inc.updated_at)
                    )
            self.applied[partition] = int(offset) if offset else -1
            self.pipelines[partition] = pipe
        return pipe

    async def _store_call(self, during: str, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` in a thread; while the store is unreachable, wait and try again
        (0.1 s doubling to 5 s). Steps call it before they change any state, so waiting
        holds their messages back without losing them; /healthz reports Redis down."""
        failing = False
        for delay in _backoff():
            try:
                result = await asyncio.to_thread(fn, *args)
            except self.store.unavailable as exc:
                self.metrics.store_retries.labels(during).inc()
                if not failing:
                    log.warning("Redis unreachable; waiting for it", during=during, error=str(exc))
                    failing = True
                await asyncio.sleep(delay)
                continue
            if failing:
                log.warning("Redis reachable again", during=during)
            return result
        raise AssertionError("unreachable: _backoff() never ends")

    @contextmanager
    def changing_state(self) -> Iterator[None]:
        """A block that changes in-memory state: a failure inside it leaves a state that
        cannot be written consistently, so it goes to ``on_fatal`` (the process exits)."""
        try:
            yield
        except Exception as exc:
            self.on_fatal(exc)

    def model_checkpoints(self) -> dict[str, bytes]:
        """The models this process trains: the scorer (correlate role), the detectors
        (metrics role). A process without the role never writes that model; two processes
        with the same role share one key, and the last writer wins (see README)."""
        out: dict[str, bytes] = {}
        if "correlate" in self.roles:
            out[MODELS_CHECKPOINT] = self.scorer.snapshot()
        if "metrics" in self.roles:
            out[DETECTORS_CHECKPOINT] = self.detectors.snapshot()
        return out

    def save_models(self) -> None:
        self.store.commit(dedup_states={}, checkpoints=self.model_checkpoints(), incidents={})

    # --- app -------------------------------------------------------------------------------

    def _build_app(self) -> faust.App:
        s = self.settings
        app = faust.App(s.worker.app_id, **faust_settings(s))
        raw_kw: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
        t = s.topics
        alerts_raw = app.topic(t.alerts_raw, **raw_kw)
        metrics_raw = app.topic(t.metrics_raw, **raw_kw)
        feedback = app.topic(t.feedback, **raw_kw)
        by_domain_name = repartition_topic(s)
        batch, within = s.worker.batch_size, s.worker.batch_timeout_s
        # a by-domain message carries its partition's share of an ingest batch (batch_size /
        # partitions alerts when full): a correlate step of a few ingest batches amortizes its
        # fixed costs (checkpoint, Redis transaction) without starving the lifecycle tick
        routed_batch = self.route_partitions * 4
        by_domain = app.topic(by_domain_name, **raw_kw)
        #: incident events go out through confluent-kafka (opened on first use)
        self.incidents_topic: Any = None
        self.dlq_topic = app.topic(t.dlq, **raw_kw)
        self.by_domain = by_domain

        roles = self.roles

        async def ingest(stream: Any) -> None:
            async for events in stream.take_events(batch, within=within):
                await self.ingest_batch(events, t.alerts_raw)
                self.processed(events)
                if self.credit.too_far_ahead():
                    self.pause_ingest()

        async def correlate(stream: Any) -> None:
            self.correlate_stream = stream  # acknowledges once a step's state is written
            async for events in stream.noack_take(routed_batch, within=within):
                await self.correlate_batch(events)
                self.processed(events)

        async def route_feedback(stream: Any) -> None:
            async for event in stream.events():
                await self.route_feedback(event, t.feedback)
                self.processed([event])

        async def metric_samples(stream: Any) -> None:
            async for events in stream.take_events(batch, within=within):
                await self.detect_batch(events, t.metrics_raw)
                self.processed(events)

        if "ingest" in roles:
            app.agent(alerts_raw, name="ingest")(ingest)
        if "correlate" in roles:
            app.agent(by_domain, name="correlate")(correlate)
        if "feedback" in roles:
            app.agent(feedback, name="feedback")(route_feedback)
        if "metrics" in roles:
            app.agent(metrics_raw, name="metrics")(metric_samples)

        @app.timer(s.worker.tick_interval_s)
        async def tick() -> None:
            self.maybe_resume_ingest()  # first: the lifecycle tick waits for the step lock
            if "correlate" in roles:
                await self.tick(time.time())
                async with self.lock:
                    await self.maybe_commit()

        @app.task
        async def loop_lag() -> None:
            while True:
                started = time.monotonic()
                await asyncio.sleep(LAG_PROBE_S)
                self.metrics.loop_lag.observe(time.monotonic() - started - LAG_PROBE_S)

        @app.timer(s.worker.checkpoint_interval_s)
        async def checkpoint_models() -> None:
            async with self.lock:  # snapshot on the loop: the models never change mid-pickle
                checkpoints = self.model_checkpoints()
            try:
                await asyncio.to_thread(
                    self.store.commit, dedup_states={}, checkpoints=checkpoints, incidents={}
                )
            except self.store.unavailable as exc:  # the next period writes them
                self.metrics.persist_failures.inc()
                log.warning("model checkpoint not written", error=str(exc))

        if s.worker.full_gc_interval_s:

            @app.timer(s.worker.full_gc_interval_s)
            async def full_gc() -> None:
                gc.collect()

        @app.page("/metrics")
        async def metrics_page(web: Any, request: Any) -> Any:
            return web.bytes(generate_latest(self.registry), content_type="text/plain")

        @app.page("/healthz")
        async def healthz(web: Any, request: Any) -> Any:
            try:
                redis_ok = await asyncio.to_thread(self.store.ping)
            except Exception:
                redis_ok = False
            stalled = await self.stalled_partitions()
            ok = redis_ok and not stalled
            body = {"status": "ok" if ok else "degraded", "redis": redis_ok, "stalled": stalled}
            return web.json(body, status=200 if ok else 503)

        @app.on_partitions_assigned.connect  # type: ignore[arg-type]
        async def on_assigned(app_: Any, assigned: set[TP], **kwargs: Any) -> None:
            self.progress.assign((tp.topic, tp.partition) for tp in assigned)
            # restore now, not on the partition's first message: the lifecycle tick then
            # resolves quiet incidents and publishes held updates of idle partitions too
            if "correlate" in roles:
                await self.take_over(tp.partition for tp in assigned if tp.topic == by_domain_name)

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]
        async def on_revoked(app_: Any, revoked: set[TP], **kwargs: Any) -> None:
            self.progress.forget((tp.topic, tp.partition) for tp in revoked)
            await self.hand_over(tp.partition for tp in revoked if tp.topic == by_domain_name)

        @app.on_before_shutdown.connect  # type: ignore[arg-type]
        def on_shutdown(app_: Any, **kwargs: Any) -> None:
            try:
                self.save_models()
                self.commit_on_shutdown()
            except Exception as exc:  # shutting down anyway: report, don't mask the cause
                log.warning("checkpoint on shutdown failed", error=str(exc))
            if isinstance(self.incidents_topic, Publisher):
                self.incidents_topic.close()

        return app

    # --- stages ----------------------------------------------------------------------------

    async def dead_letter(self, event: EventT, stage: str, error: str, reason: str) -> None:
        msg = event.message
        letter = DeadLetter(
            stage=stage,
            error=error,
            reason=reason,
            source_topic=msg.topic,
            source_partition=msg.partition,
            source_offset=msg.offset,
        )
        self.metrics.dlq.labels(stage, error).inc()
        await self.dlq_topic.send(key=msg.key, value=msg.value, headers=letter.headers())
        log.info("dead-lettered", stage=stage, error=error, reason=reason, offset=msg.offset)

    def processed(self, events: list[EventT]) -> None:
        """Note a handled batch's offsets (stall detection)."""
        msgs = (e.message for e in events)
        offsets = batch_offsets((m.topic, m.partition, m.offset) for m in msgs)
        self.progress.record(offsets)

    async def stalled_partitions(self) -> dict[str, int]:
        """Assigned partitions with messages waiting that have not moved for
        ``worker.stall_after_s`` (``"topic/partition" -> messages waiting``)."""
        try:
            consumer = self.app.consumer
            assigned = consumer.assignment()
            highwaters = (
                await asyncio.wait_for(consumer.highwaters(*assigned), timeout=5)
                if assigned
                else {}
            )
        except Exception as exc:  # not started yet, or the broker does not answer right now
            log.debug("highwaters unavailable", error=str(exc))
            return {}
        marks = {(tp.topic, tp.partition): hw for tp, hw in highwaters.items()}
        return self.progress.stalled(marks, time.monotonic())

    def pause_ingest(self) -> None:
        """Stop fetching alerts.raw until correlation catches up (see backpressure). Faust's
        own buffer-pressure signal is used: unlike ``pause_partitions`` it keeps records
        already fetched for the partition."""
        if self.ingest_paused is not None:
            return
        raw = self.settings.topics.alerts_raw
        tps = {tp for tp in self.app.consumer.assignment() if tp.topic == raw}
        for tp in tps:
            self.app.consumer.on_buffer_full(tp)
        self.ingest_paused = (time.monotonic(), tps)
        self.metrics.ingest_pauses.inc()

    def maybe_resume_ingest(self, max_pause_s: float = 10.0) -> None:
        """Fetch alerts.raw again once half the routed backlog is correlated, or after
        ``max_pause_s`` whatever happened (a stuck correlate step must not stop ingest)."""
        if self.ingest_paused is None:
            return
        since, tps = self.ingest_paused
        if self.credit.caught_up() or time.monotonic() - since > max_pause_s:
            for tp in tps:
                self.app.consumer.on_buffer_drop(tp)
            self.ingest_paused = None

    def partition_of(self, alert: Alert) -> int:
        """The by-domain partition that correlates ``alert``."""
        domain = self.topology.domain(alert.service, alert.labels)
        return domain_partition(domain, self.route_partitions)

    async def ingest_batch(self, events: list[EventT], topic: str) -> None:
        started = time.perf_counter()
        self.metrics.messages.labels(topic).inc(len(events))
        routed: dict[int, tuple[list[Alert], list[float]]] = {}
        ok = 0
        for event in events:
            try:
                alerts = normalize(event.value)
            except NormalizeError as exc:
                await self.dead_letter(event, "normalize", exc.error, str(exc))
                continue
            arrival = event.message.timestamp
            for alert in alerts:
                part = self.partition_of(alert)
                batch = routed.get(part)
                if batch is None:
                    batch = routed[part] = ([], [])
                batch[0].append(alert)
                batch[1].append(arrival)
                ok += 1
        await self.route_alerts(routed)
        self.metrics.stage_items.labels("normalize", "ok").inc(ok)
        self.metrics.stage_seconds.labels("normalize").observe(time.perf_counter() - started)

    async def route_alerts(self, routed: dict[int, tuple[list[Alert], list[float]]]) -> None:
        """Send each partition's alerts as batch messages and wait for the broker's acks."""
        sends = []
        for part, (alerts, arrivals) in routed.items():
            self.credit.routed(part, len(alerts))
            for value in encode_batches(alerts, arrivals):
                sends.append(
                    await self.by_domain.send(
                        value=value, partition=part, headers=[(KIND_HEADER, KIND_ALERTS)]
                    )
                )
        if sends:
            await asyncio.gather(*sends)

    async def route_feedback(self, event: EventT, topic: str) -> None:
        self.metrics.messages.labels(topic).inc()
        try:
            fb = _feedback_decoder.decode(event.value)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            await self.dead_letter(event, "feedback", "invalid", str(exc))
            return
        domain = self.local_domain(fb.incident_id)
        if domain is None:
            record = await self.incident_record(fb.incident_id)
            if record is None:
                await self.dead_letter(
                    event, "feedback", "unknown-incident", f"no incident {fb.incident_id!r}"
                )
                return
            domain = msgspec.json.decode(record).get("domain") or fb.incident_id
        await self._store_call("feedback", self.store.record_feedback, fb.incident_id, event.value)
        await self.by_domain.send(
            key=domain.encode(),
            value=event.value,
            partition=domain_partition(domain, self.route_partitions),
            headers=[(KIND_HEADER, KIND_FEEDBACK)],
        )

    def local_domain(self, incident_id: str) -> str | None:
        """The correlation domain of an incident this process holds (None: not here)."""
        for pipe in self.pipelines.values():
            inc = pipe.incident(incident_id)
            if inc is not None:
                return inc.domain or incident_id
        return None

    async def incident_record(self, incident_id: str) -> bytes | None:
        """The incident as last written to Redis. A just-published incident is written with
        the next group commit, so an unknown id is looked up again for two commit intervals."""
        deadline = time.monotonic() + 2 * self.settings.worker.commit_interval_s + 1.0
        while True:
            record = await self._store_call("feedback", self.store.get_incident, incident_id)
            if record is not None or time.monotonic() >= deadline:
                return record
            await asyncio.sleep(0.2)

    async def detect_batch(self, events: list[EventT], topic: str) -> None:
        self.metrics.messages.labels(topic).inc(len(events))
        started = time.perf_counter()
        routed: dict[int, tuple[list[Alert], list[float]]] = {}
        for event in events:
            try:
                sample = _sample_decoder.decode(event.value)
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                await self.dead_letter(event, "detect", "invalid", str(exc))
                continue
            _score, alert = self.detectors.observe(sample)
            if alert is not None:
                self.metrics.anomalies.inc()
                batch = routed.setdefault(self.partition_of(alert), ([], []))
                batch[0].append(alert)
                batch[1].append(event.message.timestamp)
        await self.route_alerts(routed)
        self.metrics.stage_seconds.labels("detect").observe(time.perf_counter() - started)

    async def correlate_batch(self, events: list[EventT]) -> None:
        """One correlate step over every partition in the batch: one Redis read and one
        publish round; the state goes to Redis with the next group commit."""
        by_partition: dict[int, list[EventT]] = defaultdict(list)
        for event in events:
            by_partition[event.message.partition].append(event)
        async with self.lock:
            # reads first: until they are done nothing has changed, so they may wait for Redis
            for p in by_partition:
                if p not in self.pipelines:
                    await self._store_call("restore", self.pipeline_for, p)
            steps = [self._decode(p, evs) for p, evs in by_partition.items()]
            started = time.perf_counter()
            fps = [fingerprints_of(step.alerts) for step in steps]
            unwritten = self.unsaved.dedup_view()
            known = await self._store_call(
                "dedup", self.store.dedup_states, [fp for part in fps for fp in part]
            )
            overlay(known, unwritten)
            self.metrics.stage_seconds.labels("dedup").observe(time.perf_counter() - started)
            self.consistent = False
            with self.changing_state():
                for step, step_fps in zip(steps, fps, strict=True):
                    self._apply(step)
                    self._correlate(step, known, step_fps)
                await self._publish(steps)
            self.unsaved.add_messages(events)
            self.consistent = True
            for step in steps:
                self.credit.correlated(step.partition, len(step.alerts))
            self.maybe_resume_ingest()
            await self.maybe_commit()

    def _decode(self, partition: int, events: list[EventT]) -> _Step:
        """The alerts of one partition's messages, in event-time order, and its feedback (not
        yet applied). Messages the partition's state already holds (re-consumed after a
        crash) are skipped."""
        step = _Step(partition, self.pipeline_for(partition))
        applied = self.applied.get(partition, -1)
        for event in events:
            offset = event.message.offset
            if offset <= applied:
                continue
            step.offset = max(step.offset, offset)
            headers = _headers(event)
            kind = headers.get(KIND_HEADER)
            if kind == KIND_ALERTS:
                batch = decode_batch(event.value)
                step.alerts.extend(batch.alerts)
                step.arrivals.extend(batch.arrivals)
            elif kind == KIND_FEEDBACK:
                step.feedback.append(event.value)
            else:  # one JSON alert per message, as workers before batch routing sent them
                step.alerts.append(_alert_decoder.decode(event.value))
                if ARRIVAL_HEADER in headers:
                    step.arrivals.append(float(headers[ARRIVAL_HEADER]))
        # unkeyed producers spread one series over partitions: restore event order per batch
        step.alerts.sort(key=_event_time)
        return step

    def _apply(self, step: _Step) -> None:
        """Apply the step's feedback (before its alerts) and note its offset as applied."""
        for raw in step.feedback:
            step.events.extend(self._apply_feedback(step.pipe, raw))
        self.applied[step.partition] = max(self.applied.get(step.partition, -1), step.offset)

    def _correlate(self, step: _Step, known: dict[str, str | None], fps: list[str]) -> None:
        started = time.perf_counter()
        if self.settings.worker.clock == "event":  # group a backlog as it happened
            tick_s = self.settings.worker.tick_interval_s
            outcome = step.pipe.process_in_event_time(step.alerts, known, fps, tick_s)
        else:
            outcome = step.pipe.process(step.alerts, known, fps)
        if step.alerts:
            newest = step.alerts[-1].epoch  # _decode sorted them by event time
            clock = self.event_clock.get(step.partition, 0.0)
            self.event_clock[step.partition] = max(clock, newest)
        for ev in outcome.events:
            inc = ev.incident
            if not inc.domain and inc.alerts:
                inc.domain = self.topology.domain(inc.alerts[0].service)
        self.metrics.stage_seconds.labels("correlate").observe(time.perf_counter() - started)
        self.metrics.stage_items.labels("dedup", "duplicate").inc(outcome.duplicates)
        self.metrics.stage_items.labels("dedup", "ok").inc(outcome.received - outcome.duplicates)
        step.events.extend(outcome.events)
        step.dedup_states = outcome.dedup_states

    def _apply_feedback(self, pipe: AlertPipeline, raw: bytes) -> list[IncidentEvent]:
        fb = _feedback_decoder.decode(raw)
        inc = pipe.incident(fb.incident_id)
        if inc is not None:
            for update in self.scorer.learn(inc, fb):
                self.metrics.model_updates.labels(getattr(update, "model", "scorer")).inc()
                log.info("model updated", update=repr(update))
        self.metrics.stage_items.labels("feedback", "applied" if inc else "unknown").inc()
        return pipe.feedback(fb)

    def throttle_for(self, partition: int) -> UpdateThrottle:
        th = self.throttles.get(partition)
        if th is None:
            th = self.throttles[partition] = UpdateThrottle(self.settings.worker.update_interval_s)
        return th

    async def _publish(self, steps: list[_Step]) -> None:
        """Publish what the steps produced (``updated`` events rate-limited per incident),
        wait for the broker, and note the changes for the next group commit."""
        started = time.perf_counter()
        now = time.monotonic()
        published: list[list[IncidentEvent]] = []
        sends = []
        if self.incidents_topic is None:
            t = self.settings.topics
            self.incidents_topic = Publisher(self.settings.kafka.confluent_config(), t.incidents)
        for step in steps:
            throttle = step.throttle or self.throttle_for(step.partition)
            out = throttle.admit(step.events, now) + throttle.due(now)
            published.append(out)
            for ev in out:
                sends.append(
                    await self.incidents_topic.send(key=ev.incident.id.encode(), value=encode(ev))
                )
                self.metrics.incident_events.labels(ev.type.value).inc()
        if sends:
            await asyncio.gather(*sends)
        wall = time.time()
        for step in steps:  # Faust message timestamps are epoch seconds
            for arrived in step.arrivals:
                self.metrics.alert_latency.observe(max(0.0, wall - arrived))
        self.metrics.stage_seconds.labels("publish").observe(time.perf_counter() - started)
        for step, out in zip(steps, published, strict=True):
            self.unsaved.record(
                step.partition,
                dedup=step.dedup_states,
                incidents={ev.incident.id: encode(ev.incident) for ev in out},
                closed=[
                    ev.incident.id
                    for ev in out
                    if ev.incident.status is IncidentStatus.resolved or ev.incident.merged_into
                ],
                offset=step.offset,
            )

    # --- group commit (see pipeline.app.commits) --------------------------------------------

    async def maybe_commit(self) -> None:
        """Start a write of the unsaved state when ``commit_interval_s`` has passed and no
        write is in flight (call holding the step lock: the snapshots are taken now)."""
        interval = self.settings.worker.commit_interval_s
        if not self.unsaved or (self.writing is not None and not self.writing.done()):
            return
        if interval == 0:  # the step is not done until its state is written
            for delay in _backoff():
                if await self._write(*self._take()):
                    break
                await asyncio.sleep(delay)
        elif time.monotonic() - self.last_commit >= interval:
            self.writing = asyncio.ensure_future(self._write(*self._take()))

    async def commit_now(self) -> bool:
        """Write the unsaved state and wait for it (after any write in flight)."""
        if self.writing is not None:
            await asyncio.shield(self.writing)
        if not self.unsaved:
            return True
        return await self._write(*self._take())

    def _take(self) -> tuple[Batch, list[dict[str, Any]]]:
        self.last_commit = time.monotonic()
        batch = self.unsaved.take()
        commits = []
        for partition, ch in batch.changes.items():
            pipe = self.pipelines.get(partition)
            checkpoints: dict[str, bytes] = {}
            if pipe is not None:
                throttle = self.throttle_for(partition)
                checkpoints = {
                    f"pipeline:{partition}": pipe.snapshot(),
                    f"held:{partition}": _held_encoder.encode(throttle.held_ids()),
                    f"offset:{partition}": str(self.applied.get(partition, -1)).encode(),
                }
            commits.append(
                {
                    "dedup_states": ch.dedup,
                    "checkpoints": checkpoints,
                    "incidents": ch.incidents,
                    "closed_incidents": ch.closed,
                }
            )
        return batch, commits

    async def _write(self, batch: Batch, commits: list[dict[str, Any]]) -> bool:
        """Write one batch in the commit thread, then acknowledge its messages."""
        started = time.perf_counter()
        self.last_write = self.committer.submit(self._commit_all, commits)
        try:
            await asyncio.wrap_future(self.last_write)
        except Exception as exc:
            self.unsaved.failed(batch)
            self.metrics.persist_failures.inc()
            log.warning("writing correlate state failed; retrying later", error=str(exc))
            return False
        self.unsaved.landed(batch)
        for event in batch.messages:
            await self.correlate_stream.ack(event)
        self.metrics.stage_seconds.labels("persist").observe(time.perf_counter() - started)
        return True

    def _commit_all(self, commits: list[dict[str, Any]]) -> None:
        for args in commits:  # one transaction per partition (one hash tag on Redis Cluster)
            self.store.commit(**args)

    def commit_on_shutdown(self) -> None:
        """Write what is unsaved before the process exits (blocking). Skipped when a step was
        cut off half-way: its partial state must not be written; the last landed write and
        the messages after it are consistent."""
        if self.last_write is not None:
            self.last_write.result(timeout=30)
        if self.unsaved and self.consistent and not self.lock.locked():
            self._commit_all(self._take()[1])
        self.committer.shutdown(wait=True)

    async def tick(self, now: float) -> None:
        """Lifecycle clock: resolve quiet incidents on every local partition, and publish
        rate-limited updates that are due."""
        async with self.lock:
            self.consistent = False
            with self.changing_state():
                steps = []
                for partition, pipe in list(self.pipelines.items()):
                    if self.settings.worker.clock == "event":
                        events = pipe.tick_in_event_time(
                            self.event_clock.get(partition, 0.0),
                            self.settings.worker.tick_interval_s,
                        )
                    else:
                        events = pipe.tick(now)
                    if events or self.throttle_for(partition).pending:
                        steps.append(_Step(partition, pipe, events=events))
                if steps:
                    await self._publish(steps)
            self.consistent = True
            self.metrics.open_incidents.set(
                sum(
                    1
                    for p in self.pipelines.values()
                    for inc in p.correlator.incidents()
                    if inc.status is not IncidentStatus.resolved and not inc.merged_into
                )
            )

    async def take_over(self, partitions: Iterable[int]) -> None:
        """Restore the state of newly assigned by-domain partitions from their checkpoints."""
        partitions = list(partitions)
        self.credit.own(partitions)
        async with self.lock:
            for partition in partitions:
                if partition not in self.pipelines:
                    await self._store_call("restore", self.pipeline_for, partition)

    async def hand_over(self, partitions: Iterable[int]) -> None:
        """Publish held updates of partitions this worker gives up, then forget them."""
        partitions = list(partitions)
        self.credit.disown(partitions)
        self.maybe_resume_ingest()
        async with self.lock:
            steps = []
            for partition in partitions:
                pipe = self.pipelines.get(partition)
                throttle = self.throttles.get(partition)
                if pipe is not None and throttle is not None and throttle.pending:
                    held = throttle.drain()
                    steps.append(_Step(partition, pipe, events=held, throttle=throttle))
            if steps:
                with self.changing_state():
                    await self._publish(steps)
            if not await self.commit_now():
                log.warning("state of revoked partitions not written", partitions=partitions)
            for partition in partitions:
                self.pipelines.pop(partition, None)
                self.throttles.pop(partition, None)
                self.applied.pop(partition, None)


@dataclass
class _Step:
    """One partition's share of a correlate step."""

    partition: int
    pipe: AlertPipeline
    alerts: list[Alert] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    events: list[IncidentEvent] = field(default_factory=list)
    dedup_states: dict[str, str] = field(default_factory=dict)
    #: the partition's throttle when it is no longer registered (hand-over)
    throttle: UpdateThrottle | None = None
    #: highest by-domain offset among the step's messages (-1: none)
    offset: int = -1
    #: routed feedback messages, applied at the start of the step
    feedback: list[bytes] = field(default_factory=list)


def _backoff() -> Iterator[float]:
    """Seconds to wait between attempts: 0.1 doubling to 5, then 5 for ever."""
    delay = 0.1
    while True:
        yield delay
        delay = min(2 * delay, 5.0)


def exit_inconsistent(exc: BaseException) -> NoReturn:
    """A step failed after changing in-memory state, which can no longer be written as a
    consistent checkpoint: exit at once, as a crash would. The restarted worker resumes the
    last state written and reads the messages after it again (nothing acknowledged is lost)."""
    log.critical("correlate step failed half-way; exiting to resume from Redis", error=repr(exc))
    os._exit(70)


_held_encoder = msgspec.msgpack.Encoder()
_held_decoder = msgspec.msgpack.Decoder(list[str])


def faust_settings(s: Settings) -> dict[str, Any]:
    """The Faust app settings of a worker (also used by the Faust ceiling of ``make bench``)."""
    creds: Any = None
    if s.kafka.sasl_mechanism:
        pw = s.kafka.sasl_password.get_secret_value() if s.kafka.sasl_password else ""
        creds = faust.SASLCredentials(
            username=s.kafka.sasl_username or "",
            password=pw,
            mechanism=s.kafka.sasl_mechanism,
            ssl_context=None,
        )
    scheme = use_tuned_transport(s.worker.fetch_max_wait_ms)
    s.worker.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "broker": s.kafka.faust_broker(scheme),
        "datadir": str(s.worker.data_dir / "{conf.name}"),
        "broker_credentials": creds,
        "web_host": s.worker.web_host,
        "web_port": s.worker.web_port,
        "web_enabled": True,
        "store": "memory://",
        "topic_partitions": s.topics.partitions,
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "broker_rebalance_timeout": s.worker.rebalance_timeout_s,
        "broker_session_timeout": s.worker.session_timeout_s,
        "broker_heartbeat_interval": min(3.0, s.worker.session_timeout_s / 4),
        "broker_max_poll_interval": max(s.worker.rebalance_timeout_s, 60.0),
        "consumer_auto_offset_reset": "earliest",
        # Correlate acknowledges a message only once its state is in Redis (group commit),
        # so Faust's wait for "all messages acked" on rebalance and stop would wait for
        # the commit timer; hand_over/commit_on_shutdown write that state themselves, and
        # the checkpointed offset makes re-consumption of unacked messages exact.
        "stream_wait_empty": False,
        "stream_buffer_maxsize": max(4096, s.worker.batch_size * 4),
        "broker_commit_every": max(1000, s.worker.batch_size),
        "broker_commit_interval": 1.0,
        "producer_linger": 0.002,
        "producer_acks": -1,
        "value_serializer": "raw",
        "key_serializer": "raw",
    }


def _event_time(alert: Alert) -> float:
    return alert.epoch
