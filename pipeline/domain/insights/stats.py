"""Small statistics helpers over scipy: one-sided bounds and tail probabilities."""

from __future__ import annotations

import numpy as np
from scipy import stats


def lower_bound(successes: int, trials: int, alpha: float) -> float:
    """One-sided ``1 - alpha`` Wilson lower bound of a proportion (0 with no trials)."""
    if trials <= 0:
        return 0.0
    ci = stats.binomtest(successes, trials).proportion_ci(
        confidence_level=1 - 2 * alpha, method="wilson"
    )
    return float(ci.low)


def cooccurrence_p(k: int, total: int, n_a: int, n_b: int) -> float:
    """P(X >= k) for X ~ Hypergeometric(total, n_a, n_b): the chance that two services seen in
    ``n_a`` and ``n_b`` of ``total`` incidents share ``k`` or more of them by chance alone."""
    if k <= 0:
        return 1.0
    return min(1.0, max(0.0, float(stats.hypergeom.sf(k - 1, total, n_a, n_b))))


def stratified_cooccurrence_p(strata: list[tuple[int, int, int, int]]) -> float:
    """Exact conditional test over strata ``(k, total, n_a, n_b)``: P(sum of X_s >= sum of
    k_s) for independent X_s ~ Hypergeometric(total_s, n_a_s, n_b_s), i.e. whether two
    services share more incidents than chance *within* each stratum (the exact form of the
    Cochran-Mantel-Haenszel test)."""
    pmf = np.ones(1)
    need = 0
    for k, total, n_a, n_b in strata:
        need += k
        if total <= 0 or n_a <= 0 or n_b <= 0:
            continue
        support = np.arange(0, min(n_a, n_b) + 1)
        pmf = np.convolve(pmf, stats.hypergeom.pmf(support, total, n_a, n_b))
    if need <= 0:
        return 1.0
    return min(1.0, max(0.0, float(pmf[need:].sum())))


def never_together_p(total: int, n_a: int, n_b: int) -> float:
    """P(X = 0) for X ~ Hypergeometric(total, n_a, n_b): the chance of never sharing an
    incident if the two alerted independently."""
    return min(1.0, max(0.0, float(stats.hypergeom.pmf(0, total, n_a, n_b))))


def bh_qvalues(p_values: list[float], m: int | None = None) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values) of ``p_values`` among ``m`` tests in
    all (``m`` defaults to how many are given; tests not given count as p = 1)."""
    n = len(p_values)
    if n == 0:
        return []
    padded = list(p_values) + [1.0] * max(0, (m or n) - n)
    return [float(q) for q in stats.false_discovery_control(padded)[:n]]
