"""The project's NAB scorer against the README's calibration point and hand-worked cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.nab_score import (
    Corpus,
    file_rows,
    load_corpus,
    probation_rows,
    scaled_sigmoid,
    score_corpus,
    zscore_baseline,
)

NAB = Path(__file__).resolve().parents[2] / "benchmarks" / "fixtures" / "nab"


def _ts(n: int) -> list[str]:
    return [f"2020-01-01 00:{i // 60:02d}:{i % 60:02d}" for i in range(n)]


def test_sigmoid_matches_readme_worked_example() -> None:
    assert scaled_sigmoid(-151 / 201) / scaled_sigmoid(-1.0) == pytest.approx(0.967, abs=1e-3)
    assert scaled_sigmoid(4.0) == -1.0


def test_probation() -> None:
    assert probation_rows(1000) == 150
    assert probation_rows(22695) == 750


def test_single_file_scores() -> None:
    n = 1000
    ts = _ts(n)
    f = file_rows("f.csv", ts, [[ts[500] + ".000000", ts[600] + ".000000"]], 0)
    corpus = Corpus([f])
    perfect = np.zeros(n)
    perfect[500] = 1.0
    res = score_corpus(corpus, {"f.csv": perfect})
    assert res["standard"].score == pytest.approx(100.0)
    assert res["standard"].tp == 1 and res["standard"].fp == 0
    null = score_corpus(corpus, {"f.csv": np.full(n, 0.5)})
    assert null["standard"].score == pytest.approx(0.0)
    # one early false alarm far from the window costs A_FP, the detection still pays
    s = perfect.copy()
    s[200] = 1.0
    res2 = score_corpus(corpus, {"f.csv": s})
    assert res2["standard"].raw == pytest.approx(1.0 - 0.11)
    # alarms inside the probationary period are ignored
    s = perfect.copy()
    s[10] = 1.0
    assert score_corpus(corpus, {"f.csv": s})["standard"].score == pytest.approx(100.0)


def test_duplicate_timestamps_extend_window() -> None:
    ts = _ts(10) + _ts(10)[-1:] + _ts(20)[10:]
    f = file_rows("d.csv", ts, [[ts[8], ts[9]]], 0)
    assert f.windows == [(8, 10)]  # the end timestamp repeats on rows 9 and 10


def test_readme_calibration_point() -> None:
    corpus, series = load_corpus(NAB)
    assert len(corpus.files) == 35 and corpus.n_windows == 55
    res = score_corpus(corpus, {n: zscore_baseline(v) for n, (_, v) in series.items()})
    assert round(res["standard"].score, 1) == 27.8
    assert round(res["lowFP"].score, 1) == 15.8
    assert round(res["lowFN"].score, 1) == 34.3


def test_sub_corpus_renumbers_windows_and_cv_runs() -> None:
    from benchmarks.nab import category, cross_validate
    from benchmarks.nab_score import sub_corpus

    corpus, series = load_corpus(NAB)
    names = [f.name for f in corpus.files if category(f.name) == "realKnownCause"]
    sub = sub_corpus(corpus, names)
    direct, _ = load_corpus(NAB, names)
    assert sub.n_windows == direct.n_windows == 19
    for a, b in zip(sub.files, direct.files, strict=True):
        assert np.array_equal(a.window_of, b.window_of)
    z = {n: zscore_baseline(v) for n, (_, v) in series.items()}
    rows = cross_validate(corpus, {"z": z})
    assert [r[0] for r in rows] == ["artificial", "realAWSCloudwatch", "realKnownCause"]
    assert all(r[1] == "z" for r in rows)
