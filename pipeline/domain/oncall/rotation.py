"""Rotations: participants take turns in shifts of a fixed wall-clock length.

Hand-off ``k`` is at wall time ``start + k * length`` in the schedule's zone (see
:mod:`.wallclock` for hand-offs that fall into a DST gap or overlap), and participant
``k mod n`` holds the shift from hand-off ``k`` to hand-off ``k + 1``. The rotation extends
backwards before ``start`` the same way; a layer decides from when it is in effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pipeline.domain.oncall.wallclock import to_instant, to_wall

Unit = Literal["hours", "days", "weeks"]
UNIT_DELTAS: dict[str, timedelta] = {
    "hours": timedelta(hours=1),
    "days": timedelta(days=1),
    "weeks": timedelta(weeks=1),
}


@dataclass(frozen=True, slots=True)
class ShiftLength:
    """``count`` hours, days or weeks of wall-clock time."""

    count: int
    unit: Unit

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"a shift lasts at least 1 {self.unit[:-1]}, not {self.count}")
        if self.unit not in UNIT_DELTAS:
            raise ValueError(f"shift unit must be hours, days or weeks, not {self.unit!r}")

    @property
    def wall(self) -> timedelta:
        return self.count * UNIT_DELTAS[self.unit]

    def __str__(self) -> str:
        return f"{self.count}{self.unit[0]}"


@dataclass(frozen=True, slots=True)
class Shift:
    """Turn ``index`` of a rotation: ``person`` from ``start`` to ``end`` (UTC, end excluded)."""

    index: int
    person: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Rotation:
    """Participants in order, the first hand-off (naive local wall time) and the length."""

    start: datetime
    length: ShiftLength
    participants: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.participants:
            raise ValueError("a rotation needs at least one participant")
        if self.start.tzinfo is not None:
            raise ValueError("a rotation's start is a wall time without a zone")

    def handoff(self, k: int, tz: ZoneInfo) -> datetime:
        """The UTC instant of hand-off ``k`` (0 is ``start``)."""
        return to_instant(self.start + k * self.length.wall, tz)

    def shift_at(self, t: datetime, tz: ZoneInfo) -> Shift:
        """The shift holding the aware instant ``t``. A shift whose two hand-offs fall on one
        instant (an hourly hand-off inside a spring-forward gap) is empty and never holds."""
        k = (to_wall(t, tz) - self.start) // self.length.wall
        while self.handoff(k, tz) > t:
            k -= 1
        while self.handoff(k + 1, tz) <= t:
            k += 1
        person = self.participants[k % len(self.participants)]
        return Shift(k, person, self.handoff(k, tz), self.handoff(k + 1, tz))
