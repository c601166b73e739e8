"""Recurring incidents: the same root cause with the same alert signature coming back.

The signature of an incident is its root cause (confirmed, else ranked first) and the alert
names its root cause raised itself, or, when the root cause raised none (a silent cause),
the alert names of the incident's most frequent rule's service. Signatures are counted with
the space-saving bound: beyond ``max_signatures`` the least frequent is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.domain.insights.facts import IncidentFacts

Signature = tuple[str, tuple[str, ...]]

NO_CAUSE = "(no root cause)"
_KEEP_IDS = 5


def signature_of(inc: IncidentFacts) -> Signature:
    cause = inc.cause
    names = tuple(sorted({name for svc, name in inc.rules if svc == cause}))
    if not names and inc.rules:
        top = max(inc.rules.items(), key=lambda kv: (kv[1], kv[0]))[0][0]
        names = tuple(sorted({name for svc, name in inc.rules if svc == top}))
    return (cause or NO_CAUSE, names)


@dataclass
class Recurrence:
    count: int = 0
    first_at: float = float("inf")
    last_at: float = float("-inf")
    #: gaps between consecutive occurrences in arrival order (closed incidents arrive about in
    #: time order): their sum, count and the smallest
    gap_sum: float = 0.0
    gaps: int = 0
    min_gap: float = float("inf")
    incident_ids: list[str] = field(default_factory=list)

    def fold(self, inc: IncidentFacts) -> None:
        if self.count:
            gap = abs(inc.opened_at - self.last_at)
            self.gap_sum += gap
            self.gaps += 1
            self.min_gap = min(self.min_gap, gap)
        self.count += 1
        self.first_at = min(self.first_at, inc.opened_at)
        self.last_at = max(self.last_at, inc.opened_at)
        self.incident_ids = [*self.incident_ids, inc.id][-_KEEP_IDS:]


@dataclass(frozen=True)
class RecurringIncident:
    root_cause: str
    alert_names: list[str]
    count: int
    first_at: float
    last_at: float
    mean_interval_s: float | None
    min_interval_s: float | None
    #: the newest few incident ids
    incident_ids: list[str]


def fold(book: dict[Signature, Recurrence], inc: IncidentFacts, max_signatures: int) -> None:
    sig = signature_of(inc)
    if sig not in book and len(book) >= max_signatures:
        victim = min(book, key=lambda s: (book[s].count, book[s].last_at))
        del book[victim]
    book.setdefault(sig, Recurrence()).fold(inc)


def recurring(book: dict[Signature, Recurrence], min_count: int = 2) -> list[RecurringIncident]:
    """Signatures seen at least ``min_count`` times, most frequent first."""
    out = [
        RecurringIncident(
            root_cause=sig[0],
            alert_names=list(sig[1]),
            count=r.count,
            first_at=r.first_at,
            last_at=r.last_at,
            mean_interval_s=(r.last_at - r.first_at) / (r.count - 1) if r.count > 1 else None,
            min_interval_s=r.min_gap if r.gaps else None,
            incident_ids=r.incident_ids,
        )
        for sig, r in book.items()
        if r.count >= min_count
    ]
    out.sort(key=lambda x: (-x.count, x.root_cause, x.alert_names))
    return out
