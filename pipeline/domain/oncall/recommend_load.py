"""Recent paging load per person, and how evenly pages are spread (Gini coefficient).

The recommender divides a person's score by ``1 + penalty * pages in the window``: among
people who fit about equally, the one paged less lately comes first, while a clear expert
still wins.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta

MAX_PAGES_KEPT = 256


class PageLoad:
    """Pages per person within a sliding window of event time."""

    def __init__(self, window: timedelta = timedelta(hours=24), penalty: float = 0.05) -> None:
        self.window = window
        self.penalty = penalty
        self._pages: dict[str, deque[datetime]] = {}

    def note(self, person: str, at: datetime) -> None:
        """``person`` was paged at ``at``."""
        pages = self._pages.setdefault(person, deque(maxlen=MAX_PAGES_KEPT))
        pages.append(at)

    def recent(self, person: str, at: datetime) -> int:
        """Pages of ``person`` in ``(at - window, at]``."""
        pages = self._pages.get(person)
        if not pages:
            return 0
        since = at - self.window
        while pages and pages[0] <= since:
            pages.popleft()
        if not pages:
            del self._pages[person]
            return 0
        return sum(1 for t in pages if t <= at)

    def factor(self, person: str, at: datetime) -> float:
        """The score multiplier for ``person`` at ``at``: 1 for nobody paged lately."""
        return 1.0 / (1.0 + self.penalty * self.recent(person, at))


def gini(counts: Iterable[float]) -> float:
    """Gini coefficient of non-negative counts: 0 when all are equal, towards 1 when one
    person takes everything (0 for no counts or all zero)."""
    values = sorted(counts)
    n = len(values)
    total = sum(values)
    if n == 0 or total <= 0:
        return 0.0
    weighted = sum((i + 1) * v for i, v in enumerate(values))
    return (2.0 * weighted) / (n * total) - (n + 1.0) / n
