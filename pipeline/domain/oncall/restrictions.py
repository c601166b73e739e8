"""Restrictions: the weekly wall-clock windows in which a layer is on call at all.

A window starts at a time of day on each of a set of weekdays (in the schedule's zone) and
lasts a wall-clock length of at most a week: ``09:00``-``17:00`` is 8 hours, ``22:00``-
``06:00`` a night, ``09:00``-``09:00`` a whole day; PagerDuty's weekly restrictions (Monday
09:00 for 4 days 8 hours) are windows too. Windows follow wall time across DST changes like
hand-offs do (:mod:`.wallclock`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from pipeline.domain.oncall.wallclock import to_instant, to_wall

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Window:
    """On call from ``start`` (wall time) for ``length`` on each of ``days`` (0 = Monday)."""

    days: frozenset[int]
    start: time
    length: timedelta

    def __post_init__(self) -> None:
        if not self.days or not self.days <= set(range(7)):
            raise ValueError("a restriction needs weekdays among mon..sun")
        if not timedelta(0) < self.length <= timedelta(weeks=1):
            raise ValueError("a restriction lasts more than 0 and at most 7 days")

    @classmethod
    def daily(cls, days: frozenset[int], start: time, end: time) -> Window:
        """From ``start`` to ``end``, the next day if ``end`` is not after ``start``."""
        base = date(2000, 1, 3)
        length = datetime.combine(base, end) - datetime.combine(base, start)
        return cls(days, start, length if length > timedelta(0) else length + timedelta(days=1))

    @property
    def end(self) -> time:
        return (datetime.combine(date(2000, 1, 3), self.start) + self.length).time()

    def interval(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The window starting on ``day`` as UTC instants, or None if not one of its days."""
        if day.weekday() not in self.days:
            return None
        begin = datetime.combine(day, self.start)
        return to_instant(begin, tz), to_instant(begin + self.length, tz)

    def describe(self) -> str:
        days = ",".join(WEEKDAYS[d] for d in sorted(self.days))
        if self.length <= timedelta(days=1):
            return f"{days} {self.start:%H:%M}-{self.end:%H:%M}"
        return f"{days} {self.start:%H:%M} for {self.length}"


@dataclass(frozen=True, slots=True)
class WindowState:
    """Whether a layer is inside its windows at an instant, and until when that holds."""

    inside: bool
    since: datetime | None
    until: datetime | None


def _intervals(
    windows: Sequence[Window], first: date, days: int, tz: ZoneInfo
) -> Iterator[tuple[datetime, datetime]]:
    for offset in range(days):
        yield from _day_intervals(tuple(windows), first + timedelta(days=offset), tz)


@lru_cache(maxsize=1 << 14)
def _day_intervals(
    windows: tuple[Window, ...], day: date, tz: ZoneInfo
) -> tuple[tuple[datetime, datetime], ...]:
    out = []
    for window in windows:
        interval = window.interval(day, tz)
        if interval is not None and interval[0] < interval[1]:
            out.append(interval)
    return tuple(out)


def window_state(windows: Sequence[Window], t: datetime, tz: ZoneInfo) -> WindowState:
    """Inside or outside the union of ``windows`` at ``t``; ``since`` and ``until`` are the
    edges of the union around ``t`` (None: none within 8 days before or 9 days after)."""
    today = to_wall(t, tz).date()
    merged = _merge(sorted(_intervals(windows, today - timedelta(days=8), 18, tz)))
    previous_end: datetime | None = None
    for start, end in merged:
        if start <= t < end:
            return WindowState(True, start, end)
        if start > t:
            return WindowState(False, previous_end, start)
        previous_end = end
    return WindowState(False, previous_end, None)


def _merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for start, end in intervals:
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
