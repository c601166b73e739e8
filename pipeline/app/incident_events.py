"""Publishing a step's incident events: ``updated`` events rate-limited per incident, the
rest at once, through :class:`~pipeline.app.event_sender.EventSender` (bounded views; events
the broker refuses for good degraded or dead-lettered). With the topology split into domains
the step's summaries go to the merge stage instead, which publishes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import structlog

from pipeline.app.dead_letters import DeadLetters
from pipeline.app.escalations import Escalations
from pipeline.app.event_sender import EventSender
from pipeline.app.group_commit import GroupCommit
from pipeline.app.metrics import Metrics
from pipeline.app.partitions import PartitionStates
from pipeline.app.publisher import Rejected
from pipeline.app.steps import Step
from pipeline.app.summaries import SummarySending
from pipeline.config import Settings
from pipeline.domain.event_view import EventLimits
from pipeline.domain.schemas import Feedback, FeedbackAction, IncidentEvent

log = structlog.get_logger("stormwatch.worker")
_feedback_decoder = msgspec.json.Decoder(Feedback)


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
        self.sender = EventSender(settings, dead_letters, metrics, self.limits)
        #: with the topology split into domains: summaries to the merge stage instead
        self.summaries: SummarySending | None = None
        #: escalation of the incidents that page (None: no Redis; split: the merge stage's)
        self.escalations: Escalations | None = None

    @property
    def topic(self) -> Any:
        """The incidents topic's producer (opened on first use; tests put a fake here)."""
        return self.sender.topic

    @topic.setter
    def topic(self, value: Any) -> None:
        self.sender.topic = value

    async def publish(self, steps: list[Step]) -> None:
        """Publish what the steps produced, wait for the broker, and note the changes for
        the next group commit."""
        started = time.perf_counter()
        now = time.monotonic()
        published: list[list[IncidentEvent]] = []
        records: dict[str, bytes] = {}
        summary_sends = []
        to_send: list[IncidentEvent] = []
        for step in steps:
            if self.summaries is not None:  # split topology: the merge stage publishes
                published.append(step.events)
                for summary in self.summaries.derive(step, records):
                    summary_sends.append(await self.summaries.send(summary))
                progress = self.states.progress(step.partition)
                summary_sends.append(await self.summaries.send_progress(step.partition, progress))
                continue
            throttle = step.throttle or self.states.throttle(step.partition)
            published.append(throttle.admit(step.events, now) + throttle.due(now))
            to_send.extend(published[-1])
        records.update(await self.sender.send(to_send))
        if self.escalations is not None and self.summaries is None:
            await self._escalate(steps)
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

    async def _escalate(self, steps: list[Step]) -> None:
        """Start, stop and end escalations after the steps' events went out (each step's
        partition owns the escalations of its incidents)."""
        assert self.escalations is not None
        now = time.time()
        for step in steps:
            acks = [_feedback_decoder.decode(raw) for raw in step.feedback]
            acks = [fb for fb in acks if fb.action is FeedbackAction.ack]
            if step.events or acks:
                await self.escalations.observe(str(step.partition), step.events, acks, now)

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

    def close(self) -> None:
        self.sender.close()
        if self.summaries is not None:
            self.summaries.close()
