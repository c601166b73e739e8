"""The synthetic NAB-style series of ``benchmarks.nab_synthetic``."""

from __future__ import annotations

import numpy as np

from benchmarks.nab_score import probation_rows
from benchmarks.nab_synthetic import KINDS, generate, nab_windows, synthetic_set


def test_windows_follow_nab() -> None:
    assert nab_windows(1000, [500]) == [(450, 550)]  # 10 % of the rows, centred
    assert nab_windows(1000, [300, 340]) == [(275, 365)]  # overlapping windows merge
    assert nab_windows(1000, [990]) == [(940, 999)]  # clipped at the end
    assert nab_windows(1000, []) == []


def test_series_are_seeded_labelled_and_after_probation() -> None:
    for kind in KINDS:
        a, b = generate(kind, 2, seed=3), generate(kind, 2, seed=3)
        for s, t in zip(a, b, strict=True):
            assert np.array_equal(s.values, t.values) and s.windows == t.windows
            n = len(s.values)
            assert len(s.timestamps) == n and np.all(np.diff(s.epochs) > 0)
            assert 1 <= len(s.anomalies) <= 3
            assert all(o >= probation_rows(n) for o, _ in s.anomalies)
            assert all(any(a <= o <= e for a, e in s.windows) for o, _ in s.anomalies)
            assert np.all(s.values >= 0)
    counts = generate("counts", 1, seed=1)[0].values
    assert np.array_equal(counts, np.round(counts))  # counts are integers


def test_synthetic_corpus_scores_a_perfect_detector_100() -> None:
    from benchmarks.nab_score import score_corpus

    corpus, series = synthetic_set(2, seed=1)
    perfect = {}
    for s, f in zip(series, corpus.files, strict=True):
        out = np.zeros(len(s.values))
        for start, _ in f.windows:
            out[start] = 1.0
        perfect[s.name] = out
    assert round(score_corpus(corpus, perfect)["standard"].score, 6) == 100.0
