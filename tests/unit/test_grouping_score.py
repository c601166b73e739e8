"""The pairwise comparison of two groupings used by the storm bench."""

from __future__ import annotations

from benchmarks.grouping import group_of, pair_score


def test_identical_groupings_score_one() -> None:
    g = group_of([["a", "b", "c"], ["d"], ["e", "f"]])
    s = pair_score(g, dict(g))
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)


def test_a_split_group_loses_recall_and_a_merge_loses_precision() -> None:
    ref = group_of([["a", "b", "c", "d"]])
    split = pair_score(ref, group_of([["a", "b"], ["c", "d"]]))
    assert split.precision == 1.0 and split.recall == 2 / 6
    merged = pair_score(group_of([["a", "b"], ["c", "d"]]), group_of([["a", "b", "c", "d"]]))
    assert merged.recall == 1.0 and merged.precision == 2 / 6


def test_alerts_only_one_side_groups_are_counted_apart() -> None:
    s = pair_score(group_of([["a", "b"], ["x"]]), group_of([["a", "b"], ["y"]]))
    assert s.f1 == 1.0 and (s.common, s.only_a, s.only_b) == (2, 1, 1)
