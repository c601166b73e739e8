"""Schedule layers: who a layer puts on call at an instant, since when and until when.

A layer is a rotation (optionally restricted to weekly windows and in effect only from/until
given instants) or a calendar of events imported from iCalendar (:mod:`.ical`). Both answer
:meth:`Layer.state`; the schedule stacks them by priority (:mod:`.schedule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from pipeline.domain.oncall.restrictions import Window, window_state
from pipeline.domain.oncall.rotation import Rotation


@dataclass(frozen=True, slots=True)
class LayerState:
    """``person`` (None: the layer has nobody) holds from ``since`` until ``until``: the
    layer's next change (None: never). ``detail`` says why, for people."""

    person: str | None
    since: datetime | None
    until: datetime | None
    detail: str = ""


class Layer(Protocol):
    """One layer of a schedule."""

    @property
    def name(self) -> str: ...

    def state(self, t: datetime, tz: ZoneInfo) -> LayerState: ...

    def participants(self) -> tuple[str, ...]: ...


def earliest(*instants: datetime | None) -> datetime | None:
    """The earliest of the given instants, ignoring None (None if all are)."""
    present = [i for i in instants if i is not None]
    return min(present) if present else None


def latest(*instants: datetime | None) -> datetime | None:
    """The latest of the given instants, ignoring None (None if all are)."""
    present = [i for i in instants if i is not None]
    return max(present) if present else None


@dataclass(frozen=True, slots=True)
class RotationLayer:
    """A rotation, on call only inside ``restrictions`` (if any) and between ``effective_from``
    (default: the rotation's first hand-off) and ``effective_until`` (default: forever)."""

    name: str
    rotation: Rotation
    restrictions: tuple[Window, ...] = ()
    effective_from: datetime | None = None
    effective_until: datetime | None = None

    def participants(self) -> tuple[str, ...]:
        return self.rotation.participants

    def starts(self, tz: ZoneInfo) -> datetime:
        return self.effective_from or self.rotation.handoff(0, tz)

    def state(self, t: datetime, tz: ZoneInfo) -> LayerState:
        begin = self.starts(tz)
        if t < begin:
            return LayerState(None, None, begin, "not in effect yet")
        if self.effective_until is not None and t >= self.effective_until:
            return LayerState(None, self.effective_until, None, "ended")
        shift = self.rotation.shift_at(t, tz)
        since, until = latest(shift.start, begin), earliest(shift.end, self.effective_until)
        n = len(self.rotation.participants)
        detail = f"{self.rotation.length} rotation, turn {shift.index % n + 1} of {n}"
        if self.restrictions:
            window = window_state(self.restrictions, t, tz)
            if not window.inside:
                until = earliest(window.until, self.effective_until)
                return LayerState(None, window.since, until, "outside its restrictions")
            since = latest(since, window.since)
            until = earliest(until, window.until)
            detail += ", restricted to " + "; ".join(w.describe() for w in self.restrictions)
        return LayerState(shift.person, since, until, detail)
