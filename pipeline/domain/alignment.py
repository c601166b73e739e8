"""Event-time alignment of alerts that reach one correlator from several input partitions.

A worker reading a backlog fetches each input partition in chunks of its own, so the alerts
routed to one correlation domain arrive interleaved in an order far from event time: on a
sparse storm one chunk of one partition covers tens of minutes. A correlator fed that order
groups differently from one fed the alerts as they happened. This is the classic low
watermark of stream processing (the Dataflow model; Flink's per-source watermarks):

* each input partition (a *source*) reports, through the routed batches, the newest event
  time routed from it and whether it still has messages not yet routed (*behind*);
* the watermark is the oldest of those times over the sources that are behind; a source that
  has caught up holds nothing back (its next alerts are live);
* alerts wait here until the watermark passes them, then go on in event-time order;
* at most ``max_held`` alerts wait: beyond that the oldest go on regardless (counted), so a
  stalled source costs ordering, never memory or liveness.

When every source has caught up (live operation) nothing waits.

With the topology split into correlation domains, a caller may also pass a ``limit`` (how far
the other domains have got, plus a slack) so that domains progress together in event time;
:meth:`EventTimeAligner.progress` is what this partition reports for the others' limits.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from typing import Any

import msgspec

from pipeline.domain.schemas import Alert


class SourceMark(msgspec.Struct, array_like=True, frozen=True):
    """What one input partition has routed: the newest event time, and whether more waits."""

    source: int
    event_time: float
    behind: bool


class _Held(msgspec.Struct, array_like=True):
    marks: list[SourceMark]
    alerts: list[Alert]
    arrivals: list[float]
    #: arrival order of each alert (older snapshots: none, the alerts are in order)
    seqs: list[int] = []


class _HeldOut(msgspec.Struct, array_like=True):
    """:class:`_Held` with each alert encoded once, when first snapshotted (a large buffer
    is written with every group commit)."""

    marks: list[SourceMark]
    alerts: list[msgspec.Raw]
    arrivals: list[float]
    seqs: list[int]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Held)


class EventTimeAligner:
    """Holds alerts until every source still behind has routed past their event time.

    ``max_held`` 0 disables alignment: alerts go on as they come.
    """

    def __init__(self, max_held: int, max_release: int = 0) -> None:
        self.max_held = max_held
        #: alerts one :meth:`release` returns at most (0: no bound); the rest stay ready for
        #: the next call, so one step never blocks the caller's event loop for long
        self.max_release = max_release
        #: the limit of the last :meth:`release` (what is ready below it goes next time)
        self._last_limit = -math.inf
        self.marks: dict[int, SourceMark] = {}
        #: [event time, arrival order, alert, arrival, alert encoded (once snapshotted)]
        self._heap: list[list[Any]] = []
        self._seq = 0
        #: alerts released before the watermark passed them (the bound was reached)
        self.forced = 0
        #: quiet time after which held alerts go on regardless (:meth:`release_stale`)
        self.quiet_after_s = 60.0

    def __len__(self) -> int:
        return len(self._heap)

    def observe(self, marks: Iterable[SourceMark]) -> None:
        """Take the newest report of each source (later reports replace earlier ones)."""
        for mark in marks:
            self.marks[mark.source] = mark

    def watermark(self) -> float:
        """Event time up to which every source has routed its alerts (inf: none is behind)."""
        behind = [m.event_time for m in self.marks.values() if m.behind]
        return min(behind) if behind else math.inf

    def add(self, alerts: list[Alert], arrivals: list[float]) -> None:
        for i, alert in enumerate(alerts):
            arrival = arrivals[i] if i < len(arrivals) else math.nan
            heapq.heappush(self._heap, [alert.epoch, self._seq, alert, arrival, None])
            self._seq += 1

    def progress(self) -> float:
        """Event time before which this partition will release no more alerts, as far as its
        inputs decide: the watermark while a source is behind; else the oldest alert held;
        the oldest held if it is :meth:`ready` (left for the next release by the bound).

        Alerts held below the watermark wait only for the other domains' progress (a
        ``limit``): reporting them would make two domains that pace each other advance by
        one skew per round trip of their progress reports (a leapfrog far slower than a
        backlog is read), while the watermark is where both would be without each other."""
        watermark = self.watermark()
        if self.ready():  # cut short by ``max_release``: these go on next, without waiting
            return min(watermark, self._heap[0][0])
        if watermark < math.inf:
            return watermark
        return self._heap[0][0] if self._heap else math.inf

    def paced(self) -> bool:
        """The oldest held alert waits only for the ``limit`` of the last :meth:`release`
        (the watermark has passed it): the other domains hold this partition back."""
        return bool(self._heap) and self._last_limit < self._heap[0][0] <= self.watermark()

    def ready(self) -> bool:
        """Alerts the last :meth:`release` passed but left for the next (``max_release``)."""
        return bool(self._heap) and self._heap[0][0] <= self._last_limit

    def release(self, limit: float = math.inf) -> tuple[list[Alert], list[float]]:
        """The alerts the watermark (and ``limit``) has passed, and the oldest beyond
        ``max_held``, oldest first, with their arrival times (NaN where unknown); at most
        ``max_release`` of them (the rest are :meth:`ready` for the next call)."""
        heap = self._heap
        limit = min(self.watermark(), limit) if self.max_held > 0 else math.inf
        self._last_limit = limit
        alerts: list[Alert] = []
        arrivals: list[float] = []
        room = self.max_release if self.max_release and self.max_held > 0 else math.inf
        while heap and (heap[0][0] <= limit or len(heap) > self.max_held) and len(alerts) < room:
            epoch, _, alert, arrival, _ = heapq.heappop(heap)
            if epoch > limit:
                self.forced += 1
            alerts.append(alert)
            arrivals.append(arrival)
        if not heap:
            self._seq = 0
        return alerts, arrivals

    def release_stale(self, quiet_s: float) -> tuple[list[Alert], list[float]]:
        """Every held alert, oldest first, when no input reached this aligner for
        ``quiet_s`` (the caller's clock: :meth:`touch`): a source that says it is behind but
        sends nothing must not hold alerts forever (counted as released early)."""
        if not self._heap or quiet_s < self.quiet_after_s:
            return [], []
        out = sorted(self._heap, key=lambda h: (h[0], h[1]))
        self._heap = []
        self._seq = 0
        self.forced += len(out)
        return [h[2] for h in out], [h[3] for h in out]

    def snapshot(self) -> bytes:
        """The marks and held alerts (in heap order, with their arrival order)."""
        heap = self._heap
        for h in heap:
            if h[4] is None:
                h[4] = msgspec.Raw(_encoder.encode(h[2]))
        return _encoder.encode(
            _HeldOut(
                list(self.marks.values()),
                [h[4] for h in heap],
                [h[3] for h in heap],
                [h[1] for h in heap],
            )
        )

    def restore(self, data: bytes) -> None:
        held = _decoder.decode(data)
        self.marks = {m.source: m for m in held.marks}
        self._heap = []
        self._seq = 0
        if not held.seqs:
            self.add(held.alerts, held.arrivals)
            return
        self._heap = [
            [a.epoch, seq, a, arrival, None]
            for a, arrival, seq in zip(held.alerts, held.arrivals, held.seqs, strict=True)
        ]
        heapq.heapify(self._heap)
        self._seq = max(held.seqs) + 1
