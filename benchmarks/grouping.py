"""Comparing two groupings of the same alerts: pairwise precision, recall and F1.

A pair of alerts is positive when one grouping puts both in one group. Precision and recall of
grouping ``b`` against the reference ``a`` are over the alerts both group (an alert only one
of them groups is left out, and reported).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PairScore:
    precision: float
    recall: float
    f1: float
    common: int
    only_a: int
    only_b: int


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def group_of(groups: Iterable[Iterable[str]]) -> dict[str, int]:
    """Alert id -> index of its group (the first, should one appear twice)."""
    out: dict[str, int] = {}
    for i, members in enumerate(groups):
        for aid in members:
            out.setdefault(aid, i)
    return out


def group_by_label(labels: Mapping[str, str]) -> dict[str, int]:
    """Alert id -> group index from alert id -> a group label (e.g. the fault behind it)."""
    index = {label: i for i, label in enumerate(sorted(set(labels.values())))}
    return {aid: index[label] for aid, label in labels.items()}


def pair_score(a: Mapping[str, int], b: Mapping[str, int]) -> PairScore:
    """Pairwise scores of grouping ``b`` against reference ``a`` (alert id -> group)."""
    common = a.keys() & b.keys()
    size_a: Counter[int] = Counter(a[x] for x in common)
    size_b: Counter[int] = Counter(b[x] for x in common)
    both: Counter[tuple[int, int]] = Counter((a[x], b[x]) for x in common)
    tp = sum(_pairs(n) for n in both.values())
    pos_a = sum(_pairs(n) for n in size_a.values())
    pos_b = sum(_pairs(n) for n in size_b.values())
    precision = tp / pos_b if pos_b else 1.0
    recall = tp / pos_a if pos_a else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairScore(
        precision, recall, f1, len(common), len(a.keys() - b.keys()), len(b.keys() - a.keys())
    )
