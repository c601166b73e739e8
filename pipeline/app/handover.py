"""Partitions changing hands: restore what this process is given, write out and forget what
it gives up (held updates published first), so the next owner resumes where it stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

from pipeline.app.backpressure import IngestPause, RouteCredit
from pipeline.app.consistency import StateGuard
from pipeline.app.group_commit import GroupCommit
from pipeline.app.incident_events import IncidentPublishing
from pipeline.app.partitions import PartitionStates
from pipeline.app.steps import Step
from pipeline.app.store_retry import StoreRetry

log = structlog.get_logger("stormwatch.worker")


class HandOver:
    def __init__(
        self,
        states: PartitionStates,
        retry: StoreRetry,
        publishing: IncidentPublishing,
        commit: GroupCommit,
        guard: StateGuard,
        lock: asyncio.Lock,
        credit: RouteCredit,
        pause: IngestPause,
    ) -> None:
        self.states = states
        self.retry = retry
        self.publishing = publishing
        self.commit = commit
        self.guard = guard
        self.lock = lock
        self.credit = credit
        self.pause = pause

    async def take_over(self, partitions: Iterable[int]) -> None:
        """Restore the state of newly assigned by-domain partitions from their checkpoints
        (now, not on their first message: the lifecycle tick then resolves quiet incidents
        and publishes held updates of idle partitions too)."""
        partitions = list(partitions)
        self.credit.own(partitions)
        async with self.lock:
            for partition in partitions:
                if partition not in self.states.pipelines:
                    await self.retry.call("restore", self.states.pipeline, partition)

    async def hand_over(self, partitions: Iterable[int]) -> None:
        """Publish held updates of partitions this worker gives up, write their state, then
        forget them."""
        partitions = list(partitions)
        self.credit.disown(partitions)
        self.pause.maybe_resume()
        async with self.lock:
            steps = []
            for partition in partitions:
                pipe = self.states.pipelines.get(partition)
                throttle = self.states.throttles.get(partition)
                if pipe is not None and throttle is not None and throttle.pending:
                    held = throttle.drain()
                    steps.append(Step(partition, pipe, events=held, throttle=throttle))
            if steps:
                with self.guard.changing():
                    await self.publishing.publish(steps)
            if not await self.commit.commit_now():
                log.warning("state of revoked partitions not written", partitions=partitions)
            for partition in partitions:
                self.states.forget(partition)
                if self.publishing.summaries is not None:
                    self.publishing.summaries.forget(partition)
