"""Local wall time <-> instants, with the daylight-saving rules every schedule follows.

Shifts are defined in a schedule's local wall time (as GoAlert and Grafana OnCall do): a
hand-off at 09:00 stays at 09:00 on both sides of a DST change, so the shift that spans the
change is an hour shorter (spring forward) or longer (fall back). Two wall times need a rule:

- a wall time that does not exist (skipped by spring forward, e.g. 02:30 in New York on the
  second Sunday of March) means the instant the clocks jumped (03:00 local);
- a wall time that exists twice (fall back, e.g. 01:30 in New York on the first Sunday of
  November) means its first occurrence (still on summer time).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=1 << 16)
def to_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of the naive local wall time ``wall`` in ``tz`` (rules above); cached,
    as schedules ask for the same hand-offs and window edges again and again."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=0 reads it with the offset before the jump (an instant after the jump),
    # fold=1 with the offset after it (an instant before): the jump lies between them.
    lo = int(wall.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())
    hi = int(first.timestamp())
    after = first.astimezone(tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def to_wall(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive local wall time of an aware ``instant`` in ``tz``."""
    return instant.astimezone(tz).replace(tzinfo=None)


def as_utc(value: datetime, tz: ZoneInfo) -> datetime:
    """An aware datetime as UTC; a naive one is read as wall time in ``tz``."""
    if value.tzinfo is None:
        return to_instant(value, tz)
    return value.astimezone(UTC)


def utc(value: datetime) -> datetime:
    """An aware datetime in UTC (naive input is refused: its zone would be a guess)."""
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no time zone")
    return value.astimezone(UTC)


EPSILON = timedelta(microseconds=1)
