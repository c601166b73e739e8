"""What ``/healthz`` and the health metrics know about consumption: offsets processed,
partitions stalled, and messages waiting (consumer lag), for the partitions Faust's consumer
reads and for those a consumer of its own reads (the merge topic's, :mod:`.merge_feed`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from faust.types import TP, EventT

from pipeline.app.health import Partition, Progress, batch_offsets, by_topic

log = structlog.get_logger("stormwatch.worker")

#: longest wait for the broker's answer to one probe
PROBE_TIMEOUT_S = 5.0


@dataclass
class Probe:
    """One look at the assigned partitions. ``answered`` is False when the consumer had not
    started or the broker did not answer in time: then nothing is known."""

    answered: bool = False
    #: ``"topic/partition" -> messages waiting`` for every stalled partition
    stalled: dict[str, int] = field(default_factory=dict)
    #: messages waiting per topic (:meth:`Progress.lag`)
    lag: dict[str, int] = field(default_factory=dict)


#: high watermarks of partitions read outside Faust's consumer (``(topic, partition) -> hw``)
HighwaterSource = Callable[[], Mapping[Partition, int | None]]


class Liveness:
    def __init__(self, stall_after_s: float, consumer: Callable[[], Any]) -> None:
        self.progress = Progress(stall_after_s)
        self._consumer = consumer
        self._sources: list[HighwaterSource] = []
        self._external: set[Partition] = set()  # their partitions at the last probe

    def add_source(self, highwaters: HighwaterSource) -> None:
        """Also watch the partitions a consumer of its own reads: ``highwaters()`` gives those
        assigned to it now; the stage that handles them reports them to :meth:`processed`."""
        self._sources.append(highwaters)

    def processed(self, events: Iterable[EventT] | Iterable[Any]) -> None:
        """Note a handled batch's offsets (events with ``message.topic/partition/offset``)."""
        msgs = (e.message for e in events)
        self.progress.record(batch_offsets((m.topic, m.partition, m.offset) for m in msgs))

    def _external_marks(self) -> dict[Partition, int | None]:
        """The external sources' partitions now; those no longer assigned are forgotten."""
        marks: dict[Partition, int | None] = {}
        for source in self._sources:
            marks.update(source())
        gone = self._external - marks.keys()
        if gone:
            self.progress.forget(gone)
        self._external = set(marks)
        return marks

    async def stalled_partitions(self) -> dict[str, int]:
        """Assigned partitions with messages waiting that have not moved for
        ``worker.stall_after_s`` (``"topic/partition" -> messages waiting``)."""
        return (await self.probe(lag=False)).stalled

    async def probe(self, lag: bool = True) -> Probe:
        """Stalled partitions and (with ``lag``) messages waiting per topic, from the
        assigned partitions' high watermarks (one broker request) and, for partitions nothing
        was processed from since their assignment, the consumer's positions."""
        try:
            consumer = self._consumer()
            assigned = consumer.assignment()
            highwaters = (
                await asyncio.wait_for(consumer.highwaters(*assigned), timeout=PROBE_TIMEOUT_S)
                if assigned
                else {}
            )
            marks = {(tp.topic, tp.partition): hw for tp, hw in highwaters.items()}
            positions = await self._positions(consumer, marks) if lag else {}
            marks.update(self._external_marks())
        except Exception as exc:  # not started yet, or the broker does not answer right now
            log.debug("highwaters unavailable", error=str(exc))
            return Probe()
        return Probe(
            answered=True,
            stalled=self.progress.stalled(marks, time.monotonic()),
            lag=by_topic(self.progress.lag(marks, positions)) if lag else {},
        )

    async def _positions(
        self, consumer: Any, marks: dict[Partition, int | None]
    ) -> dict[Partition, int]:
        """Consumer positions of the partitions nothing was processed from that hold messages
        (one whose position is not known within a second is left out)."""
        todo = self.progress.unprocessed(p for p, hw in marks.items() if hw)
        found = await asyncio.gather(
            *(asyncio.wait_for(consumer.position(TP(*tp)), timeout=1.0) for tp in todo),
            return_exceptions=True,
        )
        return {tp: int(pos) for tp, pos in zip(todo, found, strict=True) if isinstance(pos, int)}
