"""Services that keep starting to alert together, learned online: probably connected.

Topologies miss calls, and some services have no edges at all. When two services' alerts
begin within ``window_s`` of each other again and again, far more often than their own
alert rates make likely, a call (or a shared host, queue, database) probably links them.
This learner counts, per service, **onsets** (a first alert after ``window_s`` without one)
and, per pair of services, **co-onsets** (onsets within ``window_s`` of each other), and
calls a pair *associated* once it has at least ``min_count`` co-onsets and a **lift** of at
least ``min_lift``: co-onsets / the number expected if the two alerted independently
(``onsets(a) * onsets(b) * 2 * window_s / observed time``). Lift discounts services that
alert all the time, so background noise does not associate with everything.

Cost per alert: one dict lookup; per onset, one pass over the onsets of the last
``window_s``, skipped when there are ``max_recent`` or more (a storm: everything begins
together, and co-onsets say nothing about links). Memory and checkpoint: at most
``max_pairs`` pairs; when full, the pairs seen together only once are forgotten (an
amortized sweep), and new pairs wait until there is room.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import msgspec


@dataclass(frozen=True)
class CoOccurrenceSettings:
    """Knobs of :class:`CoOccurrence` (documented in docs/correlation.md)."""

    window_s: float = 60.0
    min_count: int = 3
    min_lift: float = 3.0
    max_recent: int = 16
    max_pairs: int = 5_000

    def __post_init__(self) -> None:
        if self.max_recent < 1 or self.max_pairs < 0:
            raise ValueError("max_recent must be >= 1 and max_pairs >= 0")
        if self.window_s <= 0:
            raise ValueError(f"window_s must be > 0 (got {self.window_s})")
        if self.min_count < 1:
            raise ValueError(f"min_count must be >= 1 (got {self.min_count})")


class _State(msgspec.Struct):
    first_t: float | None
    last_t: float
    onsets: dict[str, int]
    last: dict[str, float]
    pairs: list[tuple[str, str, int]]
    recent: list[tuple[float, str]]


class CoOccurrence:
    """Online co-onset counts of service pairs (pure, deterministic, event time)."""

    __slots__ = ("_first_t", "_last", "_last_t", "_onsets", "_pairs", "_partners", "_recent", "s")

    # _partners holds, per service, only the services it co-onset with at least ``min_count``
    # times (the only ones that can be associated), so a lookup checks a few lifts

    def __init__(self, settings: CoOccurrenceSettings | None = None) -> None:
        self.s = settings or CoOccurrenceSettings()
        self._first_t: float | None = None
        self._last_t = float("-inf")
        self._onsets: dict[str, int] = {}
        self._last: dict[str, float] = {}  # service -> time of its latest alert
        self._pairs: dict[tuple[str, str], int] = {}
        self._partners: dict[str, set[str]] = {}  # service -> services it co-onset with
        self._recent: deque[tuple[float, str]] = deque()

    def observe(self, service: str, t: float) -> bool:
        """A firing alert on ``service`` at ``t``; returns whether it was an onset."""
        if self._first_t is None:
            self._first_t = t
        if t > self._last_t:
            self._last_t = t
        w = self.s.window_s
        prev = self._last.get(service)
        self._last[service] = t if prev is None or t > prev else prev
        if prev is not None and t - prev <= w and t >= prev - w:
            return False
        self._onsets[service] = self._onsets.get(service, 0) + 1
        recent = self._recent
        while recent and recent[0][0] < t - w:
            recent.popleft()
        if len(recent) >= self.s.max_recent:
            # a storm: more services began alerting within the window than are paired; every
            # pair would co-onset, which says nothing about which are linked
            recent.append((t, service))
            recent.popleft()
            return True
        pairs = self._pairs
        if len(pairs) >= self.s.max_pairs:
            # full: forget the pairs seen together once (most of a storm's), keep the rest
            for key in [k for k, n in pairs.items() if n == 1]:
                del pairs[key]
        full = len(pairs) >= self.s.max_pairs
        min_count = self.s.min_count
        for t2, other in recent:
            if other == service or t2 - t > w:
                continue
            key = (service, other) if service < other else (other, service)
            n = pairs.get(key, 0) + 1
            if n == 1 and full:
                continue
            pairs[key] = n
            if n == min_count:
                self._partners.setdefault(service, set()).add(other)
                self._partners.setdefault(other, set()).add(service)
        recent.append((t, service))
        return True

    def lift(self, a: str, b: str) -> float:
        """Co-onsets of ``a`` and ``b`` over those expected by chance (0 when unknown)."""
        key = (a, b) if a < b else (b, a)
        n = self._pairs.get(key, 0)
        if n == 0 or self._first_t is None:
            return 0.0
        span = max(self._last_t - self._first_t, 2 * self.s.window_s)
        expected = self._onsets[a] * self._onsets[b] * 2 * self.s.window_s / span
        return n / expected if expected > 0 else 0.0

    def count(self, a: str, b: str) -> int:
        """Co-onsets of ``a`` and ``b``."""
        return self._pairs.get((a, b) if a < b else (b, a), 0)

    def associated(self, a: str, b: str) -> bool:
        """Have ``a`` and ``b`` started alerting together often enough to be related?"""
        return self.count(a, b) >= self.s.min_count and self.lift(a, b) >= self.s.min_lift

    def partners(self, service: str) -> list[str]:
        """The services associated with ``service``, sorted."""
        frequent = self._partners.get(service)
        if not frequent:
            return []
        return sorted(p for p in frequent if self.lift(service, p) >= self.s.min_lift)

    def to_bytes(self) -> bytes:
        """A msgpack checkpoint (see :meth:`from_bytes`)."""
        return msgspec.msgpack.encode(
            _State(
                self._first_t,
                self._last_t,
                self._onsets,
                self._last,
                [(a, b, n) for (a, b), n in self._pairs.items()],
                list(self._recent),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes, settings: CoOccurrenceSettings | None = None) -> CoOccurrence:
        st = msgspec.msgpack.decode(data, type=_State)
        c = cls(settings)
        c._first_t, c._last_t = st.first_t, st.last_t
        c._onsets, c._last = st.onsets, st.last
        for a, b, n in st.pairs:
            c._pairs[(a, b)] = n
            if n >= c.s.min_count:
                c._partners.setdefault(a, set()).add(b)
                c._partners.setdefault(b, set()).add(a)
        c._recent.extend((t, s) for t, s in st.recent)
        return c
