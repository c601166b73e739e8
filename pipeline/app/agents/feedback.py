"""Feedback agent: ``feedback`` -> validate (bad input to the DLQ) -> record in Redis ->
by-domain topic, on the partition of the incident's correlation domain, so the worker that
owns the incident applies it in its next correlate step (before that step's alerts). With
the topology split into domains it goes to the merge stage instead, which sends it to the
partition of each per-domain incident the published one unites."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from faust.types import EventT

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.dead_letters import DeadLetters
from pipeline.app.liveness import Liveness
from pipeline.app.metrics import Metrics
from pipeline.app.partitions import PartitionStates
from pipeline.app.router import DomainRouter
from pipeline.app.routing import KIND_FEEDBACK, KIND_HEADER
from pipeline.app.store_retry import StoreRetry
from pipeline.domain.schemas import Feedback

_feedback_decoder = msgspec.json.Decoder(Feedback)


def _source(event: EventT) -> str | None:
    """Where the message was read (``topic/partition/offset``), None when unknown."""
    msg = getattr(event, "message", None)
    topic, partition, offset = (getattr(msg, k, None) for k in ("topic", "partition", "offset"))
    if topic is None or partition is None or offset is None:
        return None
    return f"{topic}/{partition}/{offset}"


class FeedbackAgent:
    def __init__(
        self,
        topic: str,
        router: DomainRouter,
        states: PartitionStates,
        store: RedisStore,
        retry: StoreRetry,
        dead_letters: DeadLetters,
        liveness: Liveness,
        metrics: Metrics,
        commit_interval_s: float,
    ) -> None:
        self.topic = topic
        self.router = router
        self.states = states
        self.store = store
        self.retry = retry
        self.dead_letters = dead_letters
        self.liveness = liveness
        self.metrics = metrics
        self.commit_interval_s = commit_interval_s
        #: with the topology split into domains: the merge topic, which fans feedback out
        #: to every per-domain member of the incident
        self.merge_topic: Any = None

    async def run(self, stream: Any) -> None:
        async for event in stream.events():
            await self.handle(event)
            self.liveness.processed([event])

    async def handle(self, event: EventT) -> None:
        self.metrics.messages.labels(self.topic).inc()
        try:
            fb = _feedback_decoder.decode(event.value)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            await self.dead_letters.send(event, "feedback", "invalid", str(exc))
            return
        self.metrics.feedback_received(fb)
        domain = self.states.local_domain(fb.incident_id)
        if domain is None:
            record = await self.incident_record(fb.incident_id)
            if record is None:
                await self.dead_letters.send(
                    event, "feedback", "unknown-incident", f"no incident {fb.incident_id!r}"
                )
                return
            domain = msgspec.json.decode(record).get("domain") or fb.incident_id
        # keyed by where it was read: a message read again after a crash is stored once
        await self.retry.call(
            "feedback", self.store.record_feedback, fb.incident_id, event.value, _source(event)
        )
        if self.merge_topic is not None:  # split topology: the merge stage fans it out
            await self.merge_topic.send(
                key=fb.incident_id.encode(),
                value=event.value,
                headers=[(KIND_HEADER, KIND_FEEDBACK)],
            )
            return
        await self.router.send_feedback(domain, event.value)

    async def incident_record(self, incident_id: str) -> bytes | None:
        """The incident as last written to Redis. A just-published incident is written with
        the next group commit, so an unknown id is looked up again for two commit intervals."""
        deadline = time.monotonic() + 2 * self.commit_interval_s + 1.0
        while True:
            record = await self.retry.call("feedback", self.store.get_incident, incident_id)
            if record is not None or time.monotonic() >= deadline:
                return record
            await asyncio.sleep(0.2)
