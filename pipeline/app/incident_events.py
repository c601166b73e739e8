"""Publishing incident events: ``updated`` events rate-limited per incident, the rest at
once, through the confluent-kafka :class:`Publisher`; the broker's acks are awaited."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pipeline.app.group_commit import GroupCommit
from pipeline.app.metrics import Metrics
from pipeline.app.partitions import PartitionStates
from pipeline.app.publisher import Publisher
from pipeline.app.steps import Step
from pipeline.config import Settings
from pipeline.domain.schemas import IncidentEvent, encode


class IncidentPublishing:
    def __init__(
        self, settings: Settings, states: PartitionStates, commit: GroupCommit, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.states = states
        self.commit = commit
        self.metrics = metrics
        #: the incidents topic's producer (opened on first use; tests put a fake here)
        self.topic: Any = None

    async def publish(self, steps: list[Step]) -> None:
        """Publish what the steps produced, wait for the broker, and note the changes for
        the next group commit."""
        started = time.perf_counter()
        now = time.monotonic()
        published: list[list[IncidentEvent]] = []
        sends = []
        if self.topic is None:
            t = self.settings.topics
            self.topic = Publisher(self.settings.kafka.confluent_config(), t.incidents)
        for step in steps:
            throttle = step.throttle or self.states.throttle(step.partition)
            out = throttle.admit(step.events, now) + throttle.due(now)
            published.append(out)
            for ev in out:
                sends.append(await self.topic.send(key=ev.incident.id.encode(), value=encode(ev)))
                self.metrics.incident_events.labels(ev.type.value).inc()
        if sends:
            await asyncio.gather(*sends)
        wall = time.time()
        for step in steps:  # Faust message timestamps are epoch seconds
            for arrived in step.arrivals:
                self.metrics.alert_latency.observe(max(0.0, wall - arrived))
        self.metrics.stage_seconds.labels("publish").observe(time.perf_counter() - started)
        for step, out in zip(steps, published, strict=True):
            self.commit.record(step, out)

    def close(self) -> None:
        if isinstance(self.topic, Publisher):
            self.topic.close()
