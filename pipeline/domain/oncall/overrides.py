"""Overrides on top of a schedule's layers, each for a period ``[start, end)``.

- ``leave``: ``person`` is unavailable; wherever a layer would put them on call, the next
  layer below with someone available answers (nobody if none does).
- ``swap``: ``person`` and ``other`` exchange their on-call time in the period.
- ``cover``: ``person`` is on call for the period instead of whoever would be; with
  ``other``, only in place of ``other``.

Leaves apply first (while the layers are stacked), then swaps, then covers; among overrides
of one kind, the later in the list wins (as the most recent override wins in PagerDuty).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Kind = Literal["leave", "swap", "cover"]
KINDS: tuple[Kind, ...] = ("leave", "swap", "cover")


@dataclass(frozen=True, slots=True)
class Override:
    """An override (semantics above); ``start`` and ``end`` are aware UTC instants."""

    id: str
    kind: Kind
    person: str
    start: datetime
    end: datetime
    other: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"override kind must be leave, swap or cover, not {self.kind!r}")
        if self.end <= self.start:
            raise ValueError(f"override {self.id!r} ends before it starts")
        if self.kind == "swap" and not self.other:
            raise ValueError(
                f"swap override {self.id!r} needs 'other': who swaps with {self.person}"
            )
        if self.other == self.person:
            raise ValueError(f"override {self.id!r} names {self.person} twice")

    def active(self, t: datetime) -> bool:
        return self.start <= t < self.end

    def describe(self) -> str:
        if self.kind == "leave":
            return f"{self.person} on leave ({self.id})"
        if self.kind == "swap":
            return f"swap {self.person} <-> {self.other} ({self.id})"
        target = f" for {self.other}" if self.other else ""
        return f"{self.person} covers{target} ({self.id})"
