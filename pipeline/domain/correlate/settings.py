"""The correlator's settings: every knob, its default and what it means."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from pipeline.domain.cooccurrence import CoOccurrenceSettings
from pipeline.domain.rootcause import DEFAULT_KIND_PATTERNS, RankSettings
from pipeline.domain.schemas import SEVERITY_RANK
from pipeline.domain.validation import check_non_negative, check_unit_interval


@dataclass(frozen=True)
class CorrelationSettings:
    """Every knob of the correlator, with its default (see docs/correlation.md)."""

    #: An alert joins an incident only within this many seconds of the incident's alerts.
    join_gap_s: float = 180.0
    #: Graph relation: a caller or dependency path of at most this many hops.
    hops: int = 2
    #: Also relate two services that call a common direct dependency (it may be the silent
    #: root cause).
    shared_dependency: bool = True
    #: Also relate any transitive caller of the incident's root cause (its blast radius).
    blast_radius: bool = True
    #: Labels that relate alerts (mostly for services missing from the topology).
    link_labels: tuple[str, ...] = ("domain", "cluster", "namespace", "host", "node", "instance")
    #: An incident takes no new alerts (except repeats of its still-firing alerts) after the
    #: first whole multiple of this (in epoch seconds: on the hour for 3600) at least half of
    #: it after its first alert (:func:`span_end`): an endless storm is cut into incidents of
    #: 0.5-1.5 times this span, each with its own root cause, and memory stays bounded by the
    #: open incidents' recent alerts, not by the storm's history. 0 disables.
    max_span_s: float = 3600.0
    #: An incident holding more members than this forgets the least useful ones (resolved
    #: first, then the oldest firing ones) down to half of it: they are counted, not listed,
    #: and their series are no longer tracked, so a storm of any size keeps the worker's
    #: memory flat (see :mod:`.compaction`). 0: unbounded.
    max_members: int = 10_000
    #: Link-label values an incident records (and relates alerts by) at most: the first
    #: ones it sees. 0: unbounded.
    max_labels: int = 256
    #: Out-of-order alerts up to this many seconds late are grouped as if on time.
    allowed_lateness_s: float = 60.0
    #: Resolve once all member alerts are resolved and nothing happened for this long
    #: (``resolved_at`` is the end of that quiet period).
    quiet_period_s: float = 120.0
    #: An alert that fired ``flap_min_fires`` times within ``flap_window_s`` is flapping: it
    #: rejoins its open incident whatever the join gap (a single re-fire is matched normally).
    flap_min_fires: int = 3
    flap_window_s: float = 600.0
    #: A member alert firing again within this long after the incident was declared resolved
    #: reopens it.
    reopen_window_s: float = 60.0
    #: A member alert still firing after this long (no resolve ever came) counts as resolved.
    stale_after_s: float = 86_400.0
    #: Merge incidents whose root causes turn out to be shared, and an incident opened at most
    #: ``burst_merge_s`` before an alert that links it to another open incident (one storm split
    #: by arrival order).
    merge: bool = True
    burst_merge_s: float = 60.0
    #: Within this many seconds of an incident's first alert, services within ``hops`` of
    #: each other ignoring edge direction (two callees of one caller, ...) are related too, when
    #: nothing closer relates them: robustness to calls missing from the topology. 0 disables.
    undirected_burst_s: float = 60.0
    #: Add calls named by alert labels (``caller``/``callee``, ``a->b`` in a label value; see
    #: :mod:`pipeline.domain.call_edges`) to the graph when the topology misses them, at most
    #: ``max_learned_calls``; they are checkpointed with the correlator.
    learn_calls: bool = True
    max_learned_calls: int = 10_000
    #: Learn which services keep starting to alert together (:mod:`pipeline.domain.
    #: cooccurrence`): an alert with no closer relation joins an incident in which an
    #: associated service began alerting within ``cooccurrence.window_s``, and the ranking
    #: treats an associated pair as near, not unrelated. Checkpointed with the correlator.
    learn_cooccurrence: bool = True
    cooccurrence: CoOccurrenceSettings = field(default_factory=CoOccurrenceSettings)
    #: N-of-M paging gates: (severity, n, window_s): page once n member alerts of at least this
    #: severity fired within window_s seconds (0 = whole incident); n = 0 disables the gate.
    page_gates: tuple[tuple[str, int, float], ...] = (
        ("critical", 1, 0.0),
        ("error", 1, 0.0),
        ("warning", 2, 300.0),
        ("info", 0, 0.0),
    )
    #: Mark symptom alerts suppressed once the top candidate's score reaches this.
    suppress_min_score: float = 0.5
    #: Re-rank on every new piece of evidence up to this many services in the incident; above
    #: it, re-rank once the evidence grew by ``rerank_growth`` (and always at resolution), so a
    #: storm costs near-linear time.
    rerank_every_upto: int = 16
    rerank_growth: float = 0.25
    #: Root-cause ranking knobs (see pipeline.domain.rootcause).
    rank: RankSettings = field(default_factory=RankSettings)
    #: Alert name regexes -> kind, checked in order.
    kind_patterns: tuple[tuple[str, str], ...] = DEFAULT_KIND_PATTERNS

    def __post_init__(self) -> None:
        check_non_negative(self)
        check_unit_interval(self, "suppress_min_score")
        for gate in self.page_gates:
            sev, n, window = gate
            if sev not in SEVERITY_RANK or n < 0 or window < 0:
                raise ValueError(
                    f"page_gates entry {list(gate)} must be [severity, n >= 0, window_s >= 0] "
                    f"with severity one of {', '.join(SEVERITY_RANK)}"
                )
        for kind, pattern in self.kind_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"kind_patterns regex {pattern!r} ({kind}): {exc}") from None


def span_end(start: float, span: float) -> float:
    """Event time after which an incident whose span counts from ``start`` takes no new
    alerts: the first whole multiple of ``span`` at least ``span / 2`` after ``start``.

    Cutting on a fixed grid, not ``span`` after the start, keeps the cuts of an endless storm
    where they are whatever happened before: each incident of the chain starts just after
    the previous cut, so a start that moved (alerts processed in other steps, in other
    domains, in another order) moves no later cut, where ``start + span`` would carry the
    difference to every following incident (measured: 1,000,000 alerts split in two domains
    kept 0.998 of the single-domain grouping over the first 30 % of the storm, 0.75 after).
    """
    return math.ceil((start + span / 2) / span) * span
