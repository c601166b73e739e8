"""Publishing incident events: ``updated`` events rate-limited per incident, the rest at
once, each a bounded view (:mod:`pipeline.domain.event_view`), through the confluent-kafka
:class:`Publisher`; the broker's acks are awaited.

An event the broker refuses for good never fails the step (which would exit, restart and
fail again: a crash loop): one refused as too large is sent again in its minimal form; one
refused otherwise, or again, goes to the dead-letter topic with the reason. Transient
failures still fail the step (the process exits and resumes from Redis)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from pipeline.app.dead_letters import DeadLetters
from pipeline.app.group_commit import GroupCommit
from pipeline.app.metrics import Metrics
from pipeline.app.partitions import PartitionStates
from pipeline.app.publisher import Publisher, Rejected
from pipeline.app.steps import Step
from pipeline.app.summaries import SummarySending
from pipeline.config import Settings
from pipeline.domain.event_view import EventLimits, encode_event_and_record, minimal_event
from pipeline.domain.schemas import IncidentEvent

log = structlog.get_logger("stormwatch.worker")


class IncidentPublishing:
    def __init__(
        self,
        settings: Settings,
        states: PartitionStates,
        commit: GroupCommit,
        dead_letters: DeadLetters,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.states = states
        self.commit = commit
        self.dead_letters = dead_letters
        self.metrics = metrics
        w = settings.worker
        #: events and the incident records in Redis are the same bounded view
        self.limits = EventLimits(max_bytes=w.max_event_bytes, max_alerts=w.max_event_alerts)
        #: the incidents topic's producer (opened on first use; tests put a fake here)
        self.topic: Any = None
        #: with the topology split into domains: summaries to the merge stage instead
        self.summaries: SummarySending | None = None

    async def publish(self, steps: list[Step]) -> None:
        """Publish what the steps produced, wait for the broker, and note the changes for
        the next group commit."""
        started = time.perf_counter()
        now = time.monotonic()
        published: list[list[IncidentEvent]] = []
        records: dict[str, bytes] = {}
        sends = []
        sent: list[IncidentEvent] = []
        summary_sends = []
        if self.topic is None:
            t = self.settings.topics
            conf = self.settings.kafka.confluent_config()
            self.topic = Publisher(conf, t.incidents, t.max_message_bytes)
        for step in steps:
            if self.summaries is not None:  # split topology: the merge stage publishes
                published.append(step.events)
                for summary in self.summaries.derive(step, records):
                    summary_sends.append(await self.summaries.send(summary))
                progress = self.states.progress(step.partition)
                summary_sends.append(await self.summaries.send_progress(step.partition, progress))
                continue
            throttle = step.throttle or self.states.throttle(step.partition)
            out = throttle.admit(step.events, now) + throttle.due(now)
            published.append(out)
            for ev in out:
                value, records[ev.incident.id] = encode_event_and_record(ev, self.limits)
                sends.append(await self.topic.send(key=ev.incident.id.encode(), value=value))
                sent.append(ev)
                self.metrics.incident_events.labels(ev.type.value).inc()
                self.metrics.incident_event_bytes.observe(len(value))
        if sends:
            results = await asyncio.gather(*sends, return_exceptions=True)
            failed = None
            for ev, result in zip(sent, results, strict=True):
                if isinstance(result, Rejected):
                    await self._refused(ev, result)
                elif isinstance(result, BaseException) and failed is None:
                    failed = result
            if failed is not None:
                raise failed
        if summary_sends:
            await self._summaries_sent(summary_sends)
        wall = time.time()
        for step in steps:  # Faust message timestamps are epoch seconds
            for arrived in step.arrivals:
                if arrived == arrived:  # NaN: unknown (an alert held over from a restore)
                    self.metrics.alert_latency.observe(max(0.0, wall - arrived))
        self.metrics.stage_seconds.labels("publish").observe(time.perf_counter() - started)
        for step, out in zip(steps, published, strict=True):
            # split topology: the merge stage writes the records of what it publishes
            self.commit.record(step, out, records if self.summaries is None else None)

    async def _summaries_sent(self, sends: list[Any]) -> None:
        """Wait for the summaries' acks: a transient failure fails the step (as for events);
        one the broker refuses for good is counted and dropped (never a crash loop)."""
        results = await asyncio.gather(*sends, return_exceptions=True)
        for result in results:
            if isinstance(result, Rejected):
                self.metrics.publish_rejected.labels(result.error, "dropped").inc()
                log.error("incident summary dropped", error=str(result))
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Rejected):
                raise result

    async def _refused(self, ev: IncidentEvent, rejected: Rejected) -> None:
        """Send a refused event in its minimal form, or dead-letter it (see module doc)."""
        key = ev.incident.id.encode()
        small = minimal_event(ev)
        if rejected.too_large:
            retry = await self.topic.send(key=key, value=small)
            try:
                await retry
            except Rejected as again:
                rejected = again
            else:
                self.metrics.publish_rejected.labels(rejected.error, "degraded").inc()
                log.warning("incident event sent in minimal form", error=str(rejected))
                return
        self.metrics.publish_rejected.labels(rejected.error, "dead_lettered").inc()
        try:
            await self.dead_letters.send_outgoing(
                self.topic.topic, key, small, "publish", rejected.error, str(rejected)
            )
        except Exception as exc:  # the DLQ refuses too: report, never loop
            self.metrics.publish_rejected.labels(rejected.error, "dropped").inc()
            log.error("incident event dropped", error=str(rejected), dlq_error=repr(exc))

    def close(self) -> None:
        if isinstance(self.topic, Publisher):
            self.topic.close()
        if self.summaries is not None:
            self.summaries.close()
