"""The insights engine: fed one closed incident or feedback message at a time, bounded memory.

The newest ``max_ledger`` incidents are kept as facts, so feedback arriving after an incident
closed (verdicts usually do) still lands on it; older incidents are folded into the running
aggregates (rule counts, recurring signatures, timings) and only their topology basket stays,
among the newest ``max_baskets``. A report folds a copy of the aggregates with the ledger, so
asking for one changes nothing.

Memory, whatever the history: ledger and pending feedback (``max_ledger`` +
``max_pending_feedback`` small records), ``max_rules`` rule counters, ``max_signatures``
signatures, ``max_timing_keys`` keys per timing dimension with ``max_buckets`` buckets each,
``max_baskets`` baskets of at most ``max_basket_services`` services.
"""

from __future__ import annotations

import copy
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from pipeline.domain.insights import noise, quality, recurring, timing
from pipeline.domain.insights import topology as topo
from pipeline.domain.insights.facts import IncidentFacts, Rule, facts_of
from pipeline.domain.insights.settings import InsightsSettings
from pipeline.domain.schemas import EventType, Feedback, Incident, IncidentEvent


@dataclass
class Aggregates:
    """What older incidents leave behind once their facts are folded."""

    rules: dict[Rule, quality.RuleStats] = field(default_factory=dict)
    signatures: dict[recurring.Signature, recurring.Recurrence] = field(default_factory=dict)
    timings: dict[str, dict[str, timing.KeyTiming]] = field(default_factory=dict)
    incidents: int = 0
    first_at: float | None = None
    last_at: float | None = None
    #: open time summed over incidents of more than one rule (the rate model's busy time)
    busy_s: float = 0.0


@dataclass(frozen=True)
class InsightsReport:
    incidents: int
    feedback: int
    #: feedback for incidents never seen, or seen so long ago they left the ledger
    unmatched_feedback: int
    first_at: float | None
    last_at: float | None
    rules: list[quality.RuleQuality]
    recurring: list[recurring.RecurringIncident]
    timings: list[timing.Timing]
    suggested_edges: list[topo.EdgeSuggestion]
    stale_edges: list[topo.StaleEdge]
    bucket_s: float


#: the attributes that make up an :class:`Insights`' state (settings and team lookup excluded)
_STATE = (
    "_ledger",
    "_pending",
    "_agg",
    "_baskets",
    "_basket_index",
    "feedback_seen",
    "unmatched_feedback",
)


class Insights:
    """Incremental insights over closed incidents and feedback (pure, no I/O)."""

    def __init__(
        self,
        settings: InsightsSettings | None = None,
        team_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.settings = settings or InsightsSettings()
        self._team_of = team_of or (lambda _s: None)
        self._ledger: OrderedDict[str, IncidentFacts] = OrderedDict()
        self._pending: OrderedDict[str, list[Feedback]] = OrderedDict()
        self._agg = Aggregates()
        self._baskets: deque[topo.Basket] = deque(maxlen=self.settings.max_baskets)
        self._basket_index: dict[str, int] = {}
        self.feedback_seen = 0
        self.unmatched_feedback = 0

    # -- input ------------------------------------------------------------------------------

    def observe_incident(self, inc: Incident) -> bool:
        """Take a closed incident in (its final state). Open incidents and incidents merged into
        another are ignored. An incident seen again (reopened and resolved anew, or a message
        read twice) replaces its facts while it is among the newest ``max_ledger``; one seen
        again after that counts twice. True when it was taken."""
        if inc.merged_into or inc.resolved_at is None:
            return False
        facts = facts_of(inc, self.settings.auto_resolve_s)
        old = self._ledger.pop(inc.id, None)
        if old is not None:
            # feedback already folded into the old facts stays with the incident
            facts.acked_at = facts.acked_at or old.acked_at
            facts.resolved_by = facts.resolved_by or old.resolved_by
            facts.verdict = facts.verdict or old.verdict
            facts.confirmed_root_cause = old.confirmed_root_cause
        for fb in self._pending.pop(inc.id, []):
            facts.apply(fb)
        self._ledger[inc.id] = facts
        if old is None:
            self._baskets.append(topo.basket_of(facts, self.settings.max_basket_services))
        while len(self._ledger) > self.settings.max_ledger:
            _, oldest = self._ledger.popitem(last=False)
            self._fold(self._agg, oldest)
        return True

    def observe_event(self, event: IncidentEvent) -> bool:
        """Take an event from ``incidents``: only ``resolved`` ones carry a closed incident."""
        if event.type is not EventType.resolved:
            return False
        return self.observe_incident(event.incident)

    def observe_feedback(self, fb: Feedback) -> None:
        """Fold a feedback message into its incident (now, or when the incident arrives)."""
        self.feedback_seen += 1
        facts = self._ledger.get(fb.incident_id)
        if facts is not None:
            facts.apply(fb)
            return
        self._pending.setdefault(fb.incident_id, []).append(fb)
        self._pending.move_to_end(fb.incident_id)
        while len(self._pending) > self.settings.max_pending_feedback:
            _, dropped = self._pending.popitem(last=False)
            self.unmatched_feedback += len(dropped)

    # -- folding ----------------------------------------------------------------------------

    def _fold(self, agg: Aggregates, f: IncidentFacts) -> None:
        s = self.settings
        agg.incidents += 1
        agg.first_at = f.opened_at if agg.first_at is None else min(agg.first_at, f.opened_at)
        end = f.resolved_at or f.opened_at
        agg.last_at = end if agg.last_at is None else max(agg.last_at, end)
        if len(f.rules) > 1:
            agg.busy_s += max(0.0, end - f.opened_at)
        for rule, count in f.rules.items():
            if rule not in agg.rules and len(agg.rules) >= s.max_rules:
                del agg.rules[min(agg.rules, key=lambda r: agg.rules[r].incidents)]
            agg.rules.setdefault(rule, quality.RuleStats()).fold(rule, count, f, s.flap_min_fires)
        recurring.fold(agg.signatures, f, s.max_signatures)
        timing.fold(agg.timings, f, self._team_of, s.bucket_s, s.max_buckets, s.max_timing_keys)

    # -- state ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything fed so far (bounded), for a checkpoint (:mod:`.checkpoint`)."""
        return {name: getattr(self, name) for name in _STATE}

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state` of an earlier instance (same settings)."""
        missing = [name for name in _STATE if name not in state]
        if missing:
            raise ValueError(f"insights state lacks {', '.join(missing)}")
        for name in _STATE:
            setattr(self, name, state[name])
        self._baskets = deque(self._baskets, maxlen=self.settings.max_baskets)

    # -- output -----------------------------------------------------------------------------

    def report(self, graph: nx.DiGraph | None = None) -> InsightsReport:
        """Everything known now. Topology findings need the service graph the correlator uses;
        without one they are empty."""
        s = self.settings
        agg = copy.deepcopy(self._agg)
        for facts in self._ledger.values():
            self._fold(agg, facts)
        baskets = list(self._baskets)
        suggestions: list[topo.EdgeSuggestion] = []
        stale: list[topo.StaleEdge] = []
        if graph is not None and baskets:
            # a basket whose facts changed later (confirmed root cause) is refreshed
            baskets = [self._fresh(b) for b in baskets]
            suggestions = topo.suggest_edges(
                baskets,
                graph,
                alpha=s.alpha,
                min_support=s.min_support,
                max_suggestions=s.max_suggestions,
            )
            stale = topo.stale_edges(baskets, graph, alpha=s.alpha)
        return InsightsReport(
            incidents=agg.incidents,
            feedback=self.feedback_seen,
            unmatched_feedback=self.unmatched_feedback
            + sum(len(v) for v in self._pending.values()),
            first_at=agg.first_at,
            last_at=agg.last_at,
            rules=quality.ranked(agg.rules, s.alpha, self._chance(agg)),
            recurring=recurring.recurring(agg.signatures),
            timings=timing.report(agg.timings, s.bucket_s),
            suggested_edges=suggestions,
            stale_edges=stale,
            bucket_s=s.bucket_s,
        )

    @staticmethod
    def _chance(agg: Aggregates) -> float:
        """The rate model's chance that an alert is corroborated by coincidence."""
        span = (agg.last_at or 0.0) - (agg.first_at or 0.0)
        return noise.chance_corroboration(agg.busy_s, span)

    def _fresh(self, b: topo.Basket) -> topo.Basket:
        facts = self._ledger.get(b.incident_id)
        if facts is None or facts.cause == b.cause:
            return b
        return topo.Basket(b.incident_id, b.first_fire, facts.cause)
