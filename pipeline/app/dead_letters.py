"""Bad input goes to the dead-letter topic with the reason, and the agent carries on."""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from pipeline.app.metrics import Metrics
from pipeline.domain.schemas import DeadLetter

log = structlog.get_logger("stormwatch.worker")


def kept_headers(msg: Any, letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The original message's headers (binary CloudEvents carry their attributes there),
    then the dead letter's own ``stormwatch-*`` headers (which replace any earlier ones)."""
    raw: Any = msg.headers or []
    items = raw.items() if isinstance(raw, dict) else raw
    own = letter.headers()
    names = {name for name, _ in own}
    return [(k, v) for k, v in items if k not in names] + own


class SourceMessage(Protocol):
    """What a dead letter reads of a consumed message (a Faust message, or the merge feed's
    :class:`~pipeline.app.merge_feed.FeedMessage`)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class Consumed(Protocol):
    """A consumed record: a Faust event, or the merge feed's ``FeedEvent``."""

    @property
    def message(self) -> SourceMessage: ...


class DeadLetters:
    """Send a consumed message's original key and bytes to the DLQ, with headers saying the
    stage, error class, reason and where it came from."""

    def __init__(self, topic: Any, metrics: Metrics) -> None:
        self.topic = topic
        self.metrics = metrics

    async def send(self, event: Consumed, stage: str, error: str, reason: str) -> None:
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
        await self.topic.send(key=msg.key, value=msg.value, headers=kept_headers(msg, letter))
        log.info("dead-lettered", stage=stage, error=error, reason=reason, offset=msg.offset)

    async def send_outgoing(
        self, topic: str, key: bytes, value: bytes, stage: str, error: str, reason: str
    ) -> None:
        """Dead-letter a message this process produced and ``topic`` refused (no source
        partition or offset: -1)."""
        letter = DeadLetter(
            stage=stage,
            error=error,
            reason=reason,
            source_topic=topic,
            source_partition=-1,
            source_offset=-1,
        )
        self.metrics.dlq.labels(stage, error).inc()
        await self.topic.send(key=key, value=value, headers=letter.headers())
        log.warning("dead-lettered an outgoing event", stage=stage, error=error, reason=reason)
