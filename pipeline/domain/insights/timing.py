"""MTTA and MTTR per service, team, root cause and severity, with trends over time buckets.

MTTR is resolve time minus open time; MTTA is the first acknowledgement minus open time (only
incidents someone acknowledged). An incident counts once for its root cause, its root
cause's team and its severity, and once for every service that alerted in it. Means and
medians are running (River's P² quantile, constant memory); trends keep the mean of each of
the newest ``max_buckets`` buckets of ``bucket_s`` (by open time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from river import stats

from pipeline.domain.insights.facts import IncidentFacts

DIMENSIONS = ("service", "team", "root_cause", "severity")
NONE_KEY = "(none)"


@dataclass
class Durations:
    """Running mean and median of one duration, and per-bucket sums."""

    n: int = 0
    total: float = 0.0
    median: stats.Quantile = field(default_factory=lambda: stats.Quantile(0.5))
    buckets: dict[int, tuple[float, int]] = field(default_factory=dict)

    def add(self, seconds: float, bucket: int, max_buckets: int) -> None:
        self.n += 1
        self.total += seconds
        self.median.update(seconds)
        s, c = self.buckets.get(bucket, (0.0, 0))
        self.buckets[bucket] = (s + seconds, c + 1)
        if len(self.buckets) > max_buckets:
            del self.buckets[min(self.buckets)]


@dataclass
class KeyTiming:
    mttr: Durations = field(default_factory=Durations)
    mtta: Durations = field(default_factory=Durations)
    incidents: int = 0


@dataclass(frozen=True)
class TrendPoint:
    bucket_start: float
    mttr_s: float | None
    mtta_s: float | None
    incidents: int


@dataclass(frozen=True)
class Timing:
    dimension: str
    key: str
    incidents: int
    resolved: int
    mttr_s: float | None
    mttr_p50_s: float | None
    acknowledged: int
    mtta_s: float | None
    mtta_p50_s: float | None
    #: mean MTTR of the newest bucket over the mean of the buckets before it, minus one
    #: (+0.5: half as long again); None with fewer than two buckets
    mttr_change: float | None
    trend: list[TrendPoint]


def keys_of(inc: IncidentFacts, team_of: Callable[[str], str | None]) -> dict[str, list[str]]:
    cause = inc.cause
    team = team_of(cause) if cause else None
    return {
        "service": inc.services or [NONE_KEY],
        "team": [team or NONE_KEY],
        "root_cause": [cause or NONE_KEY],
        "severity": [str(inc.severity)],
    }


def fold(
    book: dict[str, dict[str, KeyTiming]],
    inc: IncidentFacts,
    team_of: Callable[[str], str | None],
    bucket_s: float,
    max_buckets: int,
    max_keys: int,
) -> None:
    bucket = int(inc.opened_at // bucket_s)
    for dim, keys in keys_of(inc, team_of).items():
        table = book.setdefault(dim, {})
        for key in keys:
            if key not in table and len(table) >= max_keys:
                del table[min(table, key=lambda k: table[k].incidents)]
            kt = table.setdefault(key, KeyTiming())
            kt.incidents += 1
            if inc.resolved_at is not None:
                kt.mttr.add(max(0.0, inc.resolved_at - inc.opened_at), bucket, max_buckets)
            if inc.acked_at is not None:
                kt.mtta.add(max(0.0, inc.acked_at - inc.opened_at), bucket, max_buckets)


def _mean(d: Durations) -> float | None:
    return d.total / d.n if d.n else None


def _change(d: Durations) -> float | None:
    if len(d.buckets) < 2:
        return None
    newest = max(d.buckets)
    s, c = d.buckets[newest]
    before_s = sum(v[0] for k, v in d.buckets.items() if k != newest)
    before_c = sum(v[1] for k, v in d.buckets.items() if k != newest)
    before = before_s / before_c
    return (s / c) / before - 1 if before > 0 else None


def report(book: dict[str, dict[str, KeyTiming]], bucket_s: float) -> list[Timing]:
    """Every key of every dimension, most incidents first within a dimension."""
    out: list[Timing] = []
    for dim in DIMENSIONS:
        table = book.get(dim, {})
        for key, kt in sorted(table.items(), key=lambda kv: (-kv[1].incidents, kv[0])):
            buckets = sorted(set(kt.mttr.buckets) | set(kt.mtta.buckets))
            trend = []
            for b in buckets:
                rs, rc = kt.mttr.buckets.get(b, (0.0, 0))
                as_, ac = kt.mtta.buckets.get(b, (0.0, 0))
                trend.append(
                    TrendPoint(b * bucket_s, rs / rc if rc else None, as_ / ac if ac else None, rc)
                )
            out.append(
                Timing(
                    dimension=dim,
                    key=key,
                    incidents=kt.incidents,
                    resolved=kt.mttr.n,
                    mttr_s=_mean(kt.mttr),
                    mttr_p50_s=kt.mttr.median.get() if kt.mttr.n else None,
                    acknowledged=kt.mtta.n,
                    mtta_s=_mean(kt.mtta),
                    mtta_p50_s=kt.mtta.median.get() if kt.mtta.n else None,
                    mttr_change=_change(kt.mttr),
                    trend=trend,
                )
            )
    return out
