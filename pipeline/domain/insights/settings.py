"""Bounds and thresholds of the insights (every bound caps memory, whatever the history)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InsightsSettings:
    #: recent incidents kept whole (facts and feedback); older ones are folded into aggregates
    max_ledger: int = 10_000
    #: feedback messages waiting for an incident not seen yet (oldest dropped)
    max_pending_feedback: int = 10_000
    #: alert rules (service, alert name) tracked; the least seen is evicted beyond it
    max_rules: int = 5_000
    #: recurring signatures tracked (space-saving: the least frequent is evicted beyond it)
    max_signatures: int = 2_000
    #: keys per MTTA/MTTR dimension (service, team, root cause, severity)
    max_timing_keys: int = 1_000
    #: trend buckets kept per key (the newest)
    max_buckets: int = 30
    #: trend bucket length in seconds (one day)
    bucket_s: float = 86_400.0
    #: recent incidents whose alerting services feed the topology analysis
    max_baskets: int = 5_000
    #: services per incident taken into the topology analysis (the first to fire)
    max_basket_services: int = 50
    #: an alert that resolves by itself within this many seconds counts as auto-resolved
    auto_resolve_s: float = 300.0
    #: a rule firing this often in one incident counts as flapping there
    flap_min_fires: int = 3
    #: false discovery rate for suggested edges (Benjamini-Hochberg) and the confidence of
    #: "noisy rule" and "stale edge" calls (one-sided)
    alpha: float = 0.05
    #: incidents two services must share (unexplained) before an edge is suggested
    min_support: int = 3
    #: missing edges suggested at most
    max_suggestions: int = 20

    def __post_init__(self) -> None:
        for name in (
            "max_ledger",
            "max_pending_feedback",
            "max_rules",
            "max_signatures",
            "max_timing_keys",
            "max_buckets",
            "max_baskets",
            "max_basket_services",
            "flap_min_fires",
            "min_support",
            "max_suggestions",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"insights {name} must be at least 1")
        if self.bucket_s <= 0 or self.auto_resolve_s <= 0:
            raise ValueError("insights bucket_s and auto_resolve_s must be positive")
        if not 0 < self.alpha < 1:
            raise ValueError("insights alpha must be in (0, 1)")
