"""Sending incident events on ``incidents``: each a bounded view
(:mod:`pipeline.domain.event_view`) through the confluent-kafka :class:`Publisher`, the
broker's acks awaited.

An event the broker refuses for good never fails the caller's step (which would exit,
restart and fail again: a crash loop): one refused as too large is sent again in its minimal
form; one refused otherwise, or again, goes to the dead-letter topic with the reason.
Transient failures still fail the step (the process exits and resumes from Redis). Used by
the correlate path and by the merge stage alike.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from pipeline.app.dead_letters import DeadLetters
from pipeline.app.metrics import Metrics
from pipeline.app.publisher import Publisher, Rejected
from pipeline.config import Settings
from pipeline.domain.event_view import EventLimits, encode_event_and_record, minimal_event
from pipeline.domain.schemas import EventType, IncidentEvent

log = structlog.get_logger("stormwatch.worker")


class EventSender:
    def __init__(
        self, settings: Settings, dead_letters: DeadLetters, metrics: Metrics, limits: EventLimits
    ) -> None:
        self.settings = settings
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.limits = limits
        #: the incidents topic's producer (opened on first use; tests put a fake here)
        self.topic: Any = None

    async def send(self, events: list[IncidentEvent]) -> dict[str, bytes]:
        """Send ``events`` in order and wait for the broker; returns each incident's record
        (the same bounded view, for the store; the last event of an incident wins)."""
        records: dict[str, bytes] = {}
        if not events:
            return records
        if self.topic is None:
            t = self.settings.topics
            conf = self.settings.kafka.confluent_config()
            self.topic = Publisher(conf, t.incidents, t.max_message_bytes)
        sends = []
        for ev in events:
            value, records[ev.incident.id] = encode_event_and_record(ev, self.limits)
            sends.append(await self.topic.send(key=ev.incident.id.encode(), value=value))
            self.metrics.incident_events.labels(ev.type.value).inc()
            self.metrics.incident_event_bytes.observe(len(value))
            if ev.type is EventType.resolved and not ev.incident.merged_into:
                inc = ev.incident
                self.metrics.incident_alerts.observe(max(inc.alert_count, len(inc.alert_ids)))
        results = await asyncio.gather(*sends, return_exceptions=True)
        failed = None
        for ev, result in zip(events, results, strict=True):
            if isinstance(result, Rejected):
                await self._refused(ev, result)
            elif isinstance(result, BaseException) and failed is None:
                failed = result
        if failed is not None:
            raise failed
        return records

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
