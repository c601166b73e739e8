"""Group commit of correlate state to Redis (what it batches: :mod:`pipeline.app.commits`).

Steps publish their incident events at once; their state is written once per
``worker.commit_interval_s`` in a background thread, one transaction per partition, and only
then are their by-domain messages acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import structlog
from faust.types import EventT

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.commits import Batch, Unsaved
from pipeline.app.metrics import Metrics
from pipeline.app.partitions import PartitionStates
from pipeline.app.steps import Step
from pipeline.app.store_retry import backoff
from pipeline.domain.schemas import IncidentEvent, IncidentStatus

log = structlog.get_logger("stormwatch.worker")


class GroupCommit:
    def __init__(
        self,
        interval_s: float,
        store: RedisStore,
        states: PartitionStates,
        metrics: Metrics,
    ) -> None:
        self.interval_s = interval_s
        self.store = store
        self.states = states
        self.metrics = metrics
        self.unsaved = Unsaved()
        #: the correlate stream, which acknowledges messages once their state is written
        self.stream: Any = None
        self.last_commit = time.monotonic()
        self.committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sw-commit")
        self.writing: asyncio.Task[bool] | None = None
        self.last_write: Future[None] | None = None

    def record(
        self, step: Step, published: list[IncidentEvent], records: dict[str, bytes] | None
    ) -> None:
        """Note what a step changed: its dedup states, membership changes, the incidents it
        published (``records``: their encoded bounded views, None when another stage writes
        them; resolved and merged ones leave the open set) and the offset it covers."""
        self.unsaved.record(
            step.partition,
            dedup=step.dedup_states,
            incidents={}
            if records is None
            else {ev.incident.id: records[ev.incident.id] for ev in published},
            closed=[]
            if records is None  # the stage that writes the records closes them too
            else [
                ev.incident.id
                for ev in published
                if ev.incident.status is IncidentStatus.resolved or ev.incident.merged_into
            ],
            offset=step.offset,
            membership=step.membership,
        )

    def add_messages(self, events: list[EventT]) -> None:
        """Messages to acknowledge once the state changed from them is written."""
        self.unsaved.add_messages(events)

    async def maybe_commit(self) -> None:
        """Start a write of the unsaved state when ``interval_s`` has passed and no write is
        in flight (call holding the step lock: the snapshots are taken now). With interval 0
        the step is not done until its state is written."""
        if not self.unsaved or (self.writing is not None and not self.writing.done()):
            return
        if self.interval_s == 0:
            for delay in backoff():
                if await self._write(*self._take()):
                    break
                await asyncio.sleep(delay)
        elif time.monotonic() - self.last_commit >= self.interval_s:
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
        commits = [
            {
                "dedup_states": ch.dedup,
                "checkpoints": self.states.checkpoints(partition),
                "incidents": ch.incidents,
                "closed_incidents": ch.closed,
                "membership": ch.membership,
            }
            for partition, ch in batch.changes.items()
        ]
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
            await self.stream.ack(event)
        self.metrics.stage_seconds.labels("persist").observe(time.perf_counter() - started)
        return True

    def _commit_all(self, commits: list[dict[str, Any]]) -> None:
        for args in commits:  # one transaction per partition (one hash tag on Redis Cluster)
            self.store.commit(**args)
            for name, value in args["checkpoints"].items():
                if name.startswith("ctlpos:"):  # controls the written state covers
                    self.store.trim_controls(int(name.split(":", 1)[1]), value.decode())

    def on_shutdown(self, writable: bool) -> None:
        """Write what is unsaved before the process exits (blocking). With ``writable``
        False (a step was cut off half-way) its partial state must not be written: the last
        landed write and the messages after it are consistent."""
        if self.last_write is not None:
            self.last_write.result(timeout=30)
        if self.unsaved and writable:
            self._commit_all(self._take()[1])
        self.committer.shutdown(wait=True)
