"""Backpressure between ingest and correlate when one process runs both.

On a backlog, ingest (cheap per alert) would route the whole backlog into the by-domain topic
long before correlation (dear per alert) gets to it; the routed backlog then waits in the
consumer's buffers while both compete for the one core. The worker stops fetching
``alerts.raw`` while too many routed alerts wait for this process's correlation and fetches
again at half that. Ingest must not simply block: Faust delivers every topic through one
consumer, so correlation's messages would stop too.
"""

from __future__ import annotations

from collections.abc import Iterable


class RouteCredit:
    """Alerts routed to by-domain partitions this process correlates and not yet correlated.

    Alerts routed to partitions another process correlates are not counted (that process has
    its own pace). ``max_ahead`` 0 means no limit.
    """

    def __init__(self, max_ahead: int) -> None:
        self.max_ahead = max_ahead
        self.pending: dict[int, int] = {}

    @property
    def total(self) -> int:
        return sum(self.pending.values())

    def own(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.pending.setdefault(p, 0)

    def disown(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.pending.pop(p, None)

    def routed(self, partition: int, n: int) -> None:
        if partition in self.pending:
            self.pending[partition] += n

    def correlated(self, partition: int, n: int) -> None:
        if partition in self.pending:
            self.pending[partition] = max(0, self.pending[partition] - n)

    def too_far_ahead(self) -> bool:
        return self.max_ahead > 0 and self.total > self.max_ahead

    def caught_up(self) -> bool:
        return self.max_ahead <= 0 or self.total <= self.max_ahead // 2
