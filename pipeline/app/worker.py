"""The Faust application of one worker process: builds the parts and wires the agents.

Flow: ``alerts.raw`` -(ingest agent: normalize, DLQ)-> ``<app>-alerts-by-domain``, one batch
message per owning partition of the alerts' correlation domains (:mod:`pipeline.app.routing`)
-(correlate agent: dedup, score, correlate, lifecycle)-> ``incidents``. ``metrics.raw``
-(metrics agent: anomaly detectors)-> by-domain, like alerts. ``feedback`` -(feedback agent)->
by-domain, so the worker that owns an incident's domain applies it.

Each agent lives in :mod:`pipeline.app.agents`; what they share has a module of its own:
:mod:`router` (sending by domain), :mod:`dead_letters`, :mod:`partitions` (state per
partition), :mod:`incident_events` (publishing), :mod:`group_commit` (state to Redis, then
acks), :mod:`store_retry`, :mod:`consistency` (exit on a half-done step), :mod:`lifecycle`
(the tick timer), :mod:`handover` (rebalances), :mod:`models` (checkpoints), :mod:`web`,
:mod:`health_metrics` (lag and readiness as metrics).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any, NoReturn

import faust
import structlog
from faust.types import TP
from prometheus_client import CollectorRegistry

from pipeline.adapters.escalation_store import EscalationStore
from pipeline.adapters.oncall_store import OnCallStore
from pipeline.adapters.redis_store import RedisStore
from pipeline.app import learned_edges
from pipeline.app.agents.correlate import CorrelateAgent
from pipeline.app.agents.detect import DetectAgent
from pipeline.app.agents.feedback import FeedbackAgent
from pipeline.app.agents.ingest import IngestAgent
from pipeline.app.agents.merge import MERGE_OWNER, MergeAgent
from pipeline.app.backpressure import IngestPause, PauseSet, RouteCredit
from pipeline.app.consistency import StateGuard
from pipeline.app.dead_letters import DeadLetters
from pipeline.app.escalations import Escalations
from pipeline.app.faust_settings import faust_settings
from pipeline.app.group_commit import GroupCommit
from pipeline.app.handover import HandOver
from pipeline.app.health_metrics import HealthSampler
from pipeline.app.incident_events import IncidentPublishing
from pipeline.app.insights import LiveInsights
from pipeline.app.lifecycle import LifecycleClock
from pipeline.app.liveness import Liveness
from pipeline.app.merge_feed import MergeFeed
from pipeline.app.metrics import Metrics
from pipeline.app.models import DETECTORS_CHECKPOINT, MODELS_CHECKPOINT, Models
from pipeline.app.page_check import PageCheck
from pipeline.app.partitions import PartitionStates
from pipeline.app.responders import Responders
from pipeline.app.router import DomainRouter
from pipeline.app.source_marks import SourceMarks
from pipeline.app.store_retry import StoreRetry
from pipeline.app.summaries import SummarySending
from pipeline.app.topics import merge_topic, repartition_topic
from pipeline.app.transport import highwater
from pipeline.app.web import add_pages
from pipeline.app.web_auth import Refusal, WebAuth
from pipeline.config import Settings
from pipeline.domain.domains import DomainMap
from pipeline.domain.schemas import Incident
from pipeline.domain.topology import Topology

__all__ = ["DETECTORS_CHECKPOINT", "MODELS_CHECKPOINT", "Worker", "faust_settings"]

log = structlog.get_logger("stormwatch.worker")

#: period of the event-loop lag probe (``stormwatch_event_loop_lag_seconds``)
LAG_PROBE_S = 0.05
#: how often ingest reads how far other processes' correlators are
PROGRESS_INTERVAL_S = 0.5
#: how often partitions paced by other domains look whether those moved on
PACE_INTERVAL_S = 0.05


class Worker:
    """One worker process: its parts, and the Faust app that runs the agents of its roles."""

    def __init__(
        self,
        settings: Settings,
        *,
        topology: Topology,
        store: RedisStore,
        registry: CollectorRegistry | None = None,
        route_partitions: int | None = None,
        on_fatal: Callable[[BaseException], NoReturn] | None = None,
        domain_map: DomainMap | None = None,
        web_auth: WebAuth | None = None,
    ) -> None:
        s = self.settings = settings
        w = s.worker
        self.roles = w.role_set
        #: the topology split into correlation domains (None: one per connected part)
        self.domain_map = domain_map
        if domain_map is not None:
            topology = domain_map.apply(topology)
        self.topology = topology
        self.store = store
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry)
        #: who may write (and, opted in, read) on the web server: pipeline.app.web_auth
        self.web_auth = web_auth or WebAuth.from_settings(w)
        self.web_auth.on_refused = self._count_refusal
        self.app = faust.App(
            w.app_id,
            **faust_settings(s),
            web_application_options={"middlewares": [self.web_auth.middleware()]},
        )
        raw_kw: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
        t = s.topics
        self.by_domain_topic = repartition_topic(s)
        by_domain = self.app.topic(self.by_domain_topic, **raw_kw)

        def consumer() -> Any:
            return self.app.consumer

        #: the step lock: correlate steps, lifecycle ticks, hand-over and model snapshots
        self.lock = asyncio.Lock()
        self.guard = StateGuard(on_fatal)
        self.liveness = Liveness(w.stall_after_s, consumer)
        self.health = HealthSampler(self.liveness, store, self.metrics)
        self.credit = RouteCredit(w.max_ingest_ahead)
        self.pauses = PauseSet(consumer)
        self.marks = SourceMarks(consumer, t.alerts_raw, self.pauses)
        self.pause = IngestPause(
            consumer,
            t.alerts_raw,
            self.credit,
            self.metrics,
            pauses=self.pauses,
        )
        self.retry = StoreRetry(store, self.metrics)
        self.models = Models(s, store, self.roles, self.metrics)
        self.states = PartitionStates(s, topology, store, self.models.scorer)
        if "correlate" in self.roles:
            self.marks.holding = self.states.held
            self.marks.holding_limit = w.max_held_alerts // 4
        self.responders = Responders(s.responders, store, topology, self.models.recommender)
        if s.responders.enabled and "correlate" in self.roles:
            self.states.responders = self.responders.annotate
            self._refresh_responders()
        self.credit.unread = self._unread
        self.commit = GroupCommit(w.commit_interval_s, store, self.states, self.metrics)
        dead_letters = DeadLetters(self.app.topic(t.dlq, **raw_kw), self.metrics)
        self.publishing = IncidentPublishing(
            s, self.states, self.commit, dead_letters, self.metrics
        )
        self.router = DomainRouter(
            by_domain, topology, route_partitions or t.partitions, self.credit, domain_map
        )
        self.lifecycle = LifecycleClock(
            w, self.states, self.publishing, self.guard, self.lock, self.metrics
        )
        self.handover = HandOver(
            self.states,
            self.retry,
            self.publishing,
            self.commit,
            self.guard,
            self.lock,
            self.credit,
            self.pause,
        )
        self.ingest = IngestAgent(
            t.alerts_raw,
            self.router,
            dead_letters,
            self.pause,
            self.liveness,
            self.metrics,
            w.batch_size,
            w.batch_timeout_s,
            self.marks if w.max_held_alerts > 0 else None,
            generic=s.formats.generic,
        )
        # a by-domain message carries its partition's share of an ingest batch (batch_size /
        # partitions alerts when full): a correlate step of a few ingest batches amortizes its
        # fixed costs (checkpoint, Redis transaction) without starving the lifecycle tick
        self.correlate = CorrelateAgent(
            s,
            topology,
            store,
            self.models.scorer,
            self.states,
            self.retry,
            self.publishing,
            self.commit,
            self.guard,
            self.lock,
            self.credit,
            self.pause,
            self.liveness,
            self.metrics,
            batch_size=self.router.partitions * 4,
        )
        if "ingest" in self.roles and w.max_held_alerts > 0:
            self.correlate.after_step = self.marks.realign
        self.correlate.responders = self.responders
        self.feedback = FeedbackAgent(
            t.feedback,
            self.router,
            self.states,
            store,
            self.retry,
            dead_letters,
            self.liveness,
            self.metrics,
            w.commit_interval_s,
        )
        self.detect = DetectAgent(
            t.metrics_raw,
            self.models.detectors,
            self.router,
            dead_letters,
            self.liveness,
            self.metrics,
            w.batch_size,
            w.batch_timeout_s,
        )
        self.merge: MergeAgent | None = None
        self.merge_feed: MergeFeed | None = None
        if domain_map is not None:
            self.metrics.correlation_domains.set(domain_map.k)
            self.correlate.controls = True
            self.correlate.consumer = consumer
            self.correlate.by_domain_topic = self.by_domain_topic
            self.publishing.summaries = SummarySending(s, merge_topic(s), self.publishing.limits)
            self.feedback.merge_topic = self.app.topic(merge_topic(s), **raw_kw)
            self.merge = MergeAgent(
                s,
                topology,
                store,
                self.retry,
                self.router,
                dead_letters,
                self.guard,
                self.metrics,
                batch_size=w.batch_size,
            )
        if self.merge is not None and s.responders.enabled:
            self.merge.responders = self.responders.annotate
        #: escalation policies run where the incidents are published: the correlate path, or
        #: the merge stage when the topology is split (not with the in-memory store of unit
        #: tests, which has no on-call directory)
        self.escalations: Escalations | None = None
        if getattr(store, "r", None) is not None:
            self.escalations = Escalations(
                EscalationStore(store.r, store.prefix, s.redis.incident_ttl_s),
                OnCallStore(store.r, store.prefix),
                store.get_incident,
                self.retry,
                self.merge.sender.send if self.merge else self.publishing.sender.send,
                self._incident,
                self.metrics,
                PageCheck(s.kafka.confluent_config(), t.incidents).published,
            )
            self.publishing.escalations = self.escalations
            if self.merge is not None:
                self.merge.escalations = self.escalations
        self._wire(raw_kw)

    def _count_refusal(self, refused: Refusal, write: bool) -> None:
        self.metrics.web_refused.labels(str(refused.status), "write" if write else "read").inc()

    def _incident(self, owner: str, incident_id: str) -> Incident | None:
        """An incident of a by-domain partition this process holds (escalation lookups)."""
        pipe = self.states.pipelines.get(int(owner)) if owner.isdigit() else None
        return pipe.incident(incident_id) if pipe is not None else None

    def _refresh_responders(self) -> None:
        """Reload the on-call directory for recommendations if it changed (blocking)."""
        errors: tuple[type[Exception], ...] = (*self.store.unavailable, ValueError)
        try:
            self.responders.refresh()
        except errors as exc:  # ValueError: a directory that does not parse
            log.warning("on-call directory not reloaded", error=str(exc))

    def _unread(self, partition: int) -> int | None:
        """By-domain messages in ``partition`` (correlated here) its state has not applied."""
        applied = self.states.applied.get(partition)
        if applied is None:
            return None
        hw = highwater(self.app.consumer, self.by_domain_topic, partition)
        return None if hw is None else hw - 1 - applied

    def _covered(self, partitions: list[int]) -> dict[int, int]:
        """The by-domain offset each partition's last written state covers."""
        out = {}
        for p in partitions:
            raw = self.store.load_checkpoint(f"offset:{p}")
            out[p] = int(raw) if raw else -1
        return out

    def _wire(self, raw_kw: dict[str, Any]) -> None:
        app, s, roles = self.app, self.settings, self.roles
        t, w = s.topics, s.worker
        if "ingest" in roles:
            app.agent(app.topic(t.alerts_raw, **raw_kw), name="ingest")(self.ingest.run)
        if "correlate" in roles:
            app.agent(self.router.topic, name="correlate")(self.correlate.run)
            if self.merge is not None:
                merge = self.merge
                feed = MergeFeed(
                    s.kafka.confluent_config(),
                    merge_topic(s),
                    f"{w.app_id}-merge",
                    merge.start_offset,
                    merge.hand_over,
                    merge.drop,
                    session_timeout_s=w.session_timeout_s,
                    fetch_max_wait_ms=w.fetch_max_wait_ms,
                    on_owned=self.metrics.merge_stage_owned.set,
                )
                self.merge_feed = feed
                self.liveness.add_source(feed.highwaters)
                merge.processed = self.liveness.processed

                @app.task
                async def merge_stage() -> None:
                    """The merge stage over its own consumer of the merge topic (a failure
                    outside a guarded change ends the process as one inside does: the next
                    owner resumes from Redis, rather than the stage stopping unseen)."""
                    feed.start()
                    try:
                        await merge.run(feed)
                    except Exception as exc:
                        self.guard.on_fatal(exc)

        if "feedback" in roles:
            app.agent(app.topic(t.feedback, **raw_kw), name="feedback")(self.feedback.run)
        if "metrics" in roles:
            app.agent(app.topic(t.metrics_raw, **raw_kw), name="metrics")(self.detect.run)

        @app.timer(w.tick_interval_s)
        async def tick() -> None:
            self.pause.maybe_resume()  # first: the lifecycle tick waits for the step lock
            if "correlate" in roles:
                await self.lifecycle.tick(time.time())
                async with self.lock:
                    await self.commit.maybe_commit()
                await self.correlate.release_held()  # what held alerts wait for may be in
                if self.merge is not None:
                    await self.merge.tick()

        if "ingest" in roles and w.max_held_alerts > 0:

            @app.timer(PROGRESS_INTERVAL_S)
            async def share_marks() -> None:
                """Align raw partitions with those other processes read (:mod:`.source_marks`)."""
                mine = self.marks.shared()
                try:
                    reported = await asyncio.to_thread(
                        self.store.share_ingest_marks, mine, time.time()
                    )
                except Exception as exc:  # Redis away: align within this process meanwhile
                    log.debug("ingest marks unavailable", error=str(exc))
                    return
                self.marks.observe_foreign(reported, time.time())
                # ingest aligns with every batch, but a process whose partitions are all held
                # reads no batch: the others' progress must release them here
                self.marks.align(self.marks.current())

        if "ingest" in roles and w.max_ingest_ahead > 0 and self.domain_map is not None:

            @app.timer(PROGRESS_INTERVAL_S)
            async def correlate_progress() -> None:
                """How far other processes' correlators are (their last group commit), so
                ingest does not bury a slower one (:class:`RouteCredit`)."""
                foreign = [p for p in self.credit.written if p not in self.credit.pending]
                if not foreign:
                    return
                try:
                    covered = await asyncio.to_thread(self._covered, foreign)
                except Exception as exc:  # Redis away: the correlators wait for it too
                    log.debug("correlate progress unavailable", error=str(exc))
                    return
                for p, offset in covered.items():
                    self.credit.progress(p, offset)
                self.pause.maybe_resume()

        if self.merge is not None and "correlate" in roles:

            @app.task
            async def paced() -> None:
                """Every ``PACE_INTERVAL_S`` after the last round ended: a round steps held
                partitions and can take longer than the interval (a Faust timer then logged
                "is overlapping" many times a second in a storm; rounds never overlapped)."""
                while True:
                    await asyncio.sleep(PACE_INTERVAL_S)
                    await self.correlate.release_if_paced()

        if "correlate" in roles and self.escalations is not None:
            escalations = self.escalations

            @app.timer(w.tick_interval_s)
            async def escalate() -> None:
                """Page the escalation steps due in the partitions held here (split: the merge
                stage's, if it runs here)."""
                if self.merge is None:
                    await escalations.tick([str(p) for p in self.states.pipelines])
                elif self.merge.merger is not None:
                    await escalations.tick([MERGE_OWNER])

        @app.timer(w.tick_interval_s)
        async def sample_health() -> None:
            """Consumer lag, stalled partitions and readiness as metrics."""
            await self.health.sample()

        @app.task
        async def loop_lag() -> None:
            while True:
                started = time.monotonic()
                await asyncio.sleep(LAG_PROBE_S)
                self.metrics.loop_lag.observe(time.monotonic() - started - LAG_PROBE_S)

        if s.responders.enabled and "correlate" in roles:

            @app.timer(s.responders.refresh_s)
            async def responders_refresh() -> None:
                await asyncio.to_thread(self._refresh_responders)

        @app.timer(w.checkpoint_interval_s)
        async def checkpoint_models() -> None:
            async with self.lock:  # snapshot on the loop: the models never change mid-pickle
                checkpoints = self.models.checkpoints()
            await self.models.write(checkpoints)

        if w.full_gc_interval_s:

            @app.timer(w.full_gc_interval_s)
            async def full_gc() -> None:
                gc.collect()

        self.insights: LiveInsights | None = None
        if "insights" in roles and s.insights.refresh_s > 0:
            self.insights = LiveInsights(s, self.store, self.topology, self.registry)

            @app.task
            async def insights_feed() -> None:
                """The feed's thread starts with the app (the topics exist by then)."""
                assert self.insights is not None
                self.insights.start()

        if s.insights.learned_edges and "correlate" in roles:
            edges = learned_edges.LearnedEdges()

            @app.timer(learned_edges.APPLY_INTERVAL_S)
            async def learn_edges() -> None:
                """Learned-edges mode: the insights' relations into this process's correlators
                (only when they changed, or a correlator is new here)."""
                data = await asyncio.to_thread(self.store.learned_relations)
                edges.apply(self.states, data)

        self.page_reads = add_pages(
            app, self.registry, self.store, self.liveness, self.topology, self.insights
        )

        @app.on_partitions_assigned.connect  # type: ignore[arg-type]
        async def on_assigned(app_: Any, assigned: set[TP], **kwargs: Any) -> None:
            self.liveness.progress.assign((tp.topic, tp.partition) for tp in assigned)
            if "correlate" in roles:
                await self.handover.take_over(
                    tp.partition for tp in assigned if tp.topic == self.by_domain_topic
                )

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]
        async def on_revoked(app_: Any, revoked: set[TP], **kwargs: Any) -> None:
            self.liveness.progress.forget((tp.topic, tp.partition) for tp in revoked)
            self.pauses.forget(revoked)
            await self.handover.hand_over(
                tp.partition for tp in revoked if tp.topic == self.by_domain_topic
            )

        @app.on_before_shutdown.connect  # type: ignore[arg-type]
        def on_shutdown(app_: Any, **kwargs: Any) -> None:
            try:
                self.models.save()
                self.commit.on_shutdown(self.guard.consistent and not self.lock.locked())
            except Exception as exc:  # shutting down anyway: report, don't mask the cause
                log.warning("checkpoint on shutdown failed", error=str(exc))
            self.publishing.close()
            self.page_reads.close()
            if self.insights is not None:
                self.insights.close()
            if self.merge_feed is not None:
                self.merge_feed.stop()
            if self.merge is not None:
                self.merge.close()
