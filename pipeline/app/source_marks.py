"""How far this process has routed each raw input partition: the marks behind event-time
alignment (:mod:`pipeline.domain.alignment`), and pausing the partitions that run ahead.

Ingest notes, per raw partition it reads, the newest event time it routed and the last offset
it handled; a partition is *behind* while that offset is short of the consumer's high-water
mark (messages wait to be routed). The marks go to every by-domain partition after each
ingest batch that changed them, at most every ``interval_s`` unless which partitions are
behind changed (a correlator waiting on a partition that has just caught up must hear it).

Consumers deliver partitions round-robin, record by record, so a partition whose records are
sparse in event time runs ahead of a dense one without bound, and correlators would have to
hold ever more alerts back. As in Flink's watermark alignment, a partition more than
:data:`ALIGN_DRIFT_S` of event time ahead of the slowest partition still behind stops being
fetched until that one catches up (records already fetched still come, so the lead is bounded
by one fetch: ``worker.fetch_max_bytes``), but only while this process's correlators hold
more than ``holding_limit`` alerts for alignment (a quarter of ``worker.max_held_alerts``):
what alignment bounds is what they hold, and a lead they can afford costs nothing. On a
backlog one fetch of a partition spans far more event time than any fixed drift (a storm of
a few alerts per second of event time: about 1,000 s per 1 MB fetch), so a drift alone held
every raw partition of a process most of the time, waiting for the others' next report
(measured with 2 workers: all of a process's raw partitions held 50-99 % of the time). A
process without correlators (ingest only) aligns by the drift alone.

The slowest is taken over every raw partition, also those other processes read: each process
shares its marks through Redis (:meth:`shared` / :meth:`observe_foreign`, every
``PROGRESS_INTERVAL_S``), as Flink's
alignment groups share a watermark across subtasks. Aligned within one process only, a
worker's partitions run ahead of the other worker's, and the correlators hold the difference
until their bound forces alerts out early (measured: 100,000 of 1,000,000 with 2 workers).
A report older than :data:`FOREIGN_STALE_S` is ignored (its process is gone; the partition's
next reader reports it).

An assigned partition that has routed nothing yet but has messages waiting (or whose end is not
known yet) is behind at the start of time: at start-up the first partition fetched must not
run ahead of the others before they have said where they are. A partition that is behind but
has not moved for :data:`ALIGN_STUCK_S` although nothing holds it is *stuck* and reported as
caught up (order matters less than progress): nothing waits for it until it moves again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from faust.types import TP

from pipeline.app.backpressure import PauseSet
from pipeline.app.transport import highwater
from pipeline.domain.alignment import SourceMark
from pipeline.domain.schemas import Alert

#: event time a raw partition may run ahead of the slowest one still behind
ALIGN_DRIFT_S = 60.0
#: wall time after which a partition behind that does not move (nothing holding it) is not
#: waited for
ALIGN_STUCK_S = 30.0
#: wall time after which another process's report of its partitions is ignored
FOREIGN_STALE_S = 15.0


class SourceMarks:
    def __init__(
        self,
        consumer: Callable[[], Any],
        topic: str,
        pauses: PauseSet | None = None,
        interval_s: float = 0.1,
        holding: Callable[[], int] | None = None,
        holding_limit: int = 0,
    ) -> None:
        self._consumer = consumer
        self.topic = topic
        self.pauses = pauses
        self.interval_s = interval_s
        #: alerts this process's correlators hold for alignment (None: it runs none)
        self.holding = holding
        #: below this many held alerts no partition is held back
        self.holding_limit = holding_limit
        #: raw partition -> (newest event time routed, last offset handled)
        self._seen: dict[int, tuple[float, int]] = {}
        #: raw partition -> when it last moved (or was first seen, or last held)
        self._moved_at: dict[int, float] = {}
        self._sent_behind: frozenset[int] | None = None
        #: the marks :meth:`current` computed last
        self._last: list[SourceMark] = []
        self._sent_at = 0.0
        #: marks other processes reported for the partitions they read
        self.foreign: dict[int, SourceMark] = {}
        #: raw partitions assigned here, as of the last :meth:`current`
        self._assigned: set[int] = set()

    def note(self, partition: int, offset: int, alerts: list[Alert]) -> None:
        newest, _ = self._seen.get(partition, (float("-inf"), -1))
        for alert in alerts:
            epoch = alert.epoch
            if epoch > newest:
                newest = epoch
        self._seen[partition] = (newest, offset)
        self._moved_at[partition] = time.monotonic()

    def due(self, marks: list[SourceMark]) -> list[SourceMark]:
        """Of the :meth:`current` marks, those to send now (empty: nothing worth sending)."""
        behind = frozenset(m.source for m in marks if m.behind)
        now = time.monotonic()
        changed = behind != self._sent_behind
        if not marks or not (changed or (behind and now - self._sent_at >= self.interval_s)):
            return []
        self._sent_behind = behind
        self._sent_at = now
        return marks

    def shared(self) -> dict[int, tuple[float, bool]]:
        """This process's marks as of the last :meth:`current`, for the other processes
        (a partition assigned here with nothing to route: not behind)."""
        shared = {p: (-math.inf, False) for p in self._assigned}
        shared.update((m.source, (m.event_time, m.behind)) for m in self._last)
        return shared

    def observe_foreign(self, reported: dict[int, tuple[float, bool, float]], now: float) -> None:
        """Take the other processes' marks (partition -> event time, behind, when reported,
        wall clock): those of partitions this process does not read, reported recently."""
        mine = self._assigned | set(self._seen)
        self.foreign = {
            p: SourceMark(p, t, behind)
            for p, (t, behind, at) in reported.items()
            if p not in mine and now - at <= FOREIGN_STALE_S
        }

    def align(self, marks: list[SourceMark]) -> None:
        """Hold the partitions that run ahead of the slowest one still behind, in any
        process, while the correlators hold more than they can afford."""
        if self.pauses is None:
            return
        if self.holding is not None and self.holding() <= self.holding_limit:
            self.pauses.hold("align", ())
            return
        behind = [m.event_time for m in (*marks, *self.foreign.values()) if m.behind]
        slowest = min(behind) if behind else None
        ahead = {
            m.source
            for m in marks
            if slowest is not None and m.event_time > slowest + ALIGN_DRIFT_S
        }
        self.pauses.hold("align", (TP(self.topic, p) for p in ahead))

    def realign(self) -> None:
        """Align again if a partition is held for it (what the correlators released, or the
        others' progress, may let it go)."""
        if self.pauses is not None and self.pauses.held("align"):
            self.align(self.current())

    def current(self) -> list[SourceMark]:
        """Marks of the raw partitions this process reads: those it has routed from, and
        those with messages waiting that it has not routed from yet (behind at -inf)."""
        consumer = self._consumer()
        assigned = {tp.partition for tp in consumer.assignment() if tp.topic == self.topic}
        self._assigned = assigned
        for gone in set(self._seen) - assigned:  # revoked: its new reader reports it
            del self._seen[gone]
        for gone in set(self._moved_at) - assigned:
            del self._moved_at[gone]
        now = time.monotonic()
        held = {tp.partition for tp in self.pauses.reasons} if self.pauses is not None else set()
        marks = []
        for partition in sorted(assigned):
            hw = highwater(consumer, self.topic, partition)
            moved = self._moved_at.setdefault(partition, now)
            if partition in held:  # not moving because held: not stuck
                self._moved_at[partition] = moved = now
            seen = self._seen.get(partition)
            if seen is None:
                waiting = hw is None or hw > _read_offset(consumer, self.topic, partition)
                newest = -math.inf
            else:
                newest, offset = seen
                waiting = hw is not None and offset + 1 < hw
            stuck = now - moved > ALIGN_STUCK_S
            if seen is None and not waiting:
                continue
            marks.append(SourceMark(partition, newest, waiting and not stuck))
        self._last = marks
        return marks


def _read_offset(consumer: Any, topic: str, partition: int) -> int:
    """Where the consumer reads the partition from (its committed offset before the first
    message; 0 when unknown)."""
    offsets = getattr(consumer, "_read_offset", None)
    value = offsets.get(TP(topic, partition)) if offsets is not None else None
    return int(value) if value is not None else 0
