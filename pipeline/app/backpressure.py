"""Backpressure between ingest and correlate.

On a backlog, ingest (cheap per alert) would route the whole backlog into the by-domain topic
long before correlation (dear per alert) gets to it; the routed backlog then waits in the
consumer's buffers while both compete for the one core, and a slower correlator elsewhere
falls ever further behind the others. The worker stops fetching
``alerts.raw`` while too many routed alerts wait for this process's correlation and fetches
again at half that. Ingest must not simply block: Faust delivers every topic through one
consumer, so correlation's messages would stop too.

Only alerts still *on the topic* count: those a correlator has taken off it and holds for
event-time alignment wait for the raw partitions' progress, and pausing those partitions for
them would stall the watermark that releases them. What correlators hold is bounded by the
alignment of the raw partitions (:mod:`pipeline.app.source_marks`) and by
``worker.max_held_alerts``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from pipeline.app.metrics import Metrics


class RouteCredit:
    """Alerts routed to by-domain partitions and not yet correlated.

    For partitions this process correlates the count is what this process routed there
    (``pending``), or, given ``unread`` (partition -> messages on the topic its correlator
    has not applied yet, whoever wrote them), those messages times the alerts per message.
    For those another process correlates it is estimated from the highest offset this process
    wrote there and the offset that process's last group commit covers (read from Redis,
    :meth:`progress`), times the alerts per message: so ingest does not bury a slower
    correlator (in a split topology, one domain's backlog would delay the merge stage's
    controls for it and let the domains drift apart in event time). ``max_ahead`` 0 means
    no limit.
    """

    def __init__(self, max_ahead: int, unread: Callable[[int], int | None] | None = None) -> None:
        self.max_ahead = max_ahead
        self.unread = unread
        self.pending: dict[int, int] = {}
        #: of those, alerts the correlator has received and holds for event-time alignment
        self.held: dict[int, int] = {}
        #: partition -> highest offset this process wrote there
        self.written: dict[int, int] = {}
        #: partition -> offset the owner's state covers (from its last group commit)
        self.covered: dict[int, int] = {}
        #: alerts per routed message (running mean)
        self.per_message = 1.0

    @property
    def total(self) -> int:
        return sum(self.pending.values())

    def wrote(self, partition: int, offset: int) -> None:
        """A routed message landed at ``offset``."""
        if offset > self.written.get(partition, -1):
            self.written[partition] = offset

    def sent(self, alerts: int, messages: int) -> None:
        """One send of ``alerts`` in ``messages`` messages (marks-only ones included)."""
        if messages:
            self.per_message += (alerts / messages - self.per_message) * 0.05

    def progress(self, partition: int, covered: int) -> None:
        self.covered[partition] = covered

    def foreign(self) -> dict[int, float]:
        """Estimated alerts waiting in partitions other processes correlate."""
        return {
            p: max(0, off - self.covered[p]) * self.per_message
            for p, off in self.written.items()
            if p not in self.pending and p in self.covered  # unknown until read from Redis
        }

    def own(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.pending.setdefault(p, 0)

    def disown(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.pending.pop(p, None)
            self.held.pop(p, None)

    def routed(self, partition: int, n: int) -> None:
        if partition in self.pending:
            self.pending[partition] += n

    def received(self, partition: int, n: int) -> None:
        """The correlator took ``n`` routed alerts off the topic (it may hold them)."""
        if partition in self.pending:
            self.held[partition] = self.held.get(partition, 0) + n

    def correlated(self, partition: int, n: int) -> None:
        if partition in self.pending:
            self.pending[partition] = max(0, self.pending[partition] - n)
            self.held[partition] = max(0, self.held.get(partition, 0) - n)

    def in_topic(self) -> float:
        """Routed alerts not even taken off the topic yet (held ones excluded): the sum over
        this process's partitions (one core correlates them all), or the estimate for
        another process's partition, whichever is larger."""
        own = sum(self._own_in_topic(p, n) for p, n in self.pending.items())
        return max([float(own), *self.foreign().values()])

    def _own_in_topic(self, partition: int, pending: int) -> float:
        messages = self.unread(partition) if self.unread is not None else None
        if messages is None:
            return max(0, pending - self.held.get(partition, 0))
        return max(0, messages) * self.per_message

    def too_far_ahead(self) -> bool:
        return self.max_ahead > 0 and self.in_topic() > self.max_ahead

    def caught_up(self) -> bool:
        return self.max_ahead <= 0 or self.in_topic() <= self.max_ahead // 2


class PauseSet:
    """Raw partitions whose fetching is stopped, and why (several reasons may hold one).

    Faust's own buffer-pressure signal is used (``on_buffer_full`` when a partition gets its
    first reason, ``on_buffer_drop`` when it loses its last): unlike ``pause_partitions`` it
    keeps records already fetched for the partition.
    """

    def __init__(self, consumer: Callable[[], Any]) -> None:
        self._consumer = consumer
        self.reasons: dict[Any, set[str]] = {}

    def hold(self, reason: str, tps: Iterable[Any]) -> None:
        """Exactly ``tps`` are held for ``reason`` from now on.

        Every held partition is signalled again on each call: Faust's own buffer pressure
        (a full stream queue) resumes a partition when its queue drains, whoever paused it,
        so a partition held here would otherwise run free until its next change (measured:
        held raw partitions ran to their end while the one not held starved)."""
        wanted = set(tps)
        consumer = self._consumer()
        for tp in wanted:
            self.reasons.setdefault(tp, set()).add(reason)
        for tp, why in list(self.reasons.items()):
            if reason in why and tp not in wanted:
                why.discard(reason)
                if not why:
                    del self.reasons[tp]
                    consumer.on_buffer_drop(tp)
        for tp in self.reasons:
            consumer.on_buffer_full(tp)

    def forget(self, tps: Iterable[Any]) -> None:
        """Drop every reason for partitions this process no longer reads (revoked: the
        consumer forgets their buffer state itself; a new assignment starts fetching)."""
        for tp in tps:
            self.reasons.pop(tp, None)

    def held(self, reason: str) -> set[Any]:
        return {tp for tp, why in self.reasons.items() if reason in why}


class IngestPause:
    """Stops and restarts fetching of the raw alerts topic as :class:`RouteCredit` says."""

    def __init__(
        self,
        consumer: Callable[[], Any],
        raw_topic: str,
        credit: RouteCredit,
        metrics: Metrics,
        max_pause_s: float = 10.0,
        pauses: PauseSet | None = None,
    ) -> None:
        self._consumer = consumer
        self.raw_topic = raw_topic
        self.credit = credit
        self.metrics = metrics
        self.max_pause_s = max_pause_s
        self.pauses = pauses or PauseSet(consumer)
        #: since when paused (None: fetching)
        self.paused: float | None = None

    def pause_if_ahead(self) -> None:
        """Stop fetching the raw topic while too many routed alerts wait for correlation."""
        if self.paused is not None:
            self._hold()  # a rebalance may have changed the assignment
            return
        if not self.credit.too_far_ahead():
            return
        self._hold()
        self.paused = time.monotonic()
        self.metrics.ingest_pauses.inc()

    def _hold(self) -> None:
        consumer = self._consumer()
        self.pauses.hold(
            "backlog", (tp for tp in consumer.assignment() if tp.topic == self.raw_topic)
        )

    def maybe_resume(self) -> None:
        """Fetch again once half the routed backlog is correlated, or after ``max_pause_s``
        whatever happened (a stuck correlate step must not stop ingest)."""
        if self.paused is None:
            return
        if self.credit.caught_up() or time.monotonic() - self.paused > self.max_pause_s:
            self.pauses.hold("backlog", ())
            self.paused = None
