"""What ``/healthz`` knows about consumption: offsets processed, and partitions stalled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from faust.types import EventT

from pipeline.app.health import Progress, batch_offsets

log = structlog.get_logger("stormwatch.worker")


class Liveness:
    def __init__(self, stall_after_s: float, consumer: Callable[[], Any]) -> None:
        self.progress = Progress(stall_after_s)
        self._consumer = consumer

    def processed(self, events: list[EventT]) -> None:
        """Note a handled batch's offsets."""
        msgs = (e.message for e in events)
        self.progress.record(batch_offsets((m.topic, m.partition, m.offset) for m in msgs))

    async def stalled_partitions(self) -> dict[str, int]:
        """Assigned partitions with messages waiting that have not moved for
        ``worker.stall_after_s`` (``"topic/partition" -> messages waiting``)."""
        try:
            consumer = self._consumer()
            assigned = consumer.assignment()
            highwaters = (
                await asyncio.wait_for(consumer.highwaters(*assigned), timeout=5)
                if assigned
                else {}
            )
        except Exception as exc:  # not started yet, or the broker does not answer right now
            log.debug("highwaters unavailable", error=str(exc))
            return {}
        marks = {(tp.topic, tp.partition): hw for tp, hw in highwaters.items()}
        return self.progress.stalled(marks, time.monotonic())
