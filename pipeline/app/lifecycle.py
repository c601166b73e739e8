"""The lifecycle clock of the correlate role: resolve quiet incidents on every local
partition and publish rate-limited updates that are due (run by a timer)."""

from __future__ import annotations

import asyncio

from pipeline.app.consistency import StateGuard
from pipeline.app.incident_events import IncidentPublishing
from pipeline.app.metrics import Metrics
from pipeline.app.partitions import PartitionStates
from pipeline.app.steps import Step
from pipeline.config import WorkerSettings


class LifecycleClock:
    def __init__(
        self,
        settings: WorkerSettings,
        states: PartitionStates,
        publishing: IncidentPublishing,
        guard: StateGuard,
        lock: asyncio.Lock,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.states = states
        self.publishing = publishing
        self.guard = guard
        self.lock = lock
        self.metrics = metrics

    async def tick(self, now: float) -> None:
        """Under the wall clock the pipelines tick at ``now``; under the event clock at the
        partition's newest event time (so a backlog resolves as it happened)."""
        async with self.lock:
            with self.guard.changing():
                steps = []
                for partition, pipe in list(self.states.pipelines.items()):
                    if self.settings.clock == "event":
                        events = pipe.tick_in_event_time(
                            self.states.event_clock.get(partition, 0.0),
                            self.settings.tick_interval_s,
                        )
                    else:
                        events = pipe.tick(now)
                    membership = pipe.take_membership()
                    if events or membership or self.states.throttle(partition).pending:
                        steps.append(Step(partition, pipe, events=events, membership=membership))
                if steps:
                    await self.publishing.publish(steps)
            by_root_cause = self.states.open_by_root_cause()
            self.metrics.open_incidents.set(sum(by_root_cause.values()))
            self.metrics.open_root_causes(by_root_cause)
