"""``make bench-nab``: NAB scores of stormwatch's detector and two baselines, side by side.

Runs every detector online over every file of ``benchmarks/fixtures/nab`` (35 development
files of NAB), scores them with the project's own NAB scorer (:mod:`benchmarks.nab_score`),
and prints standard / lowFP / lowFN scores and each detector's throughput. The first line
checks the scorer against the README's calibration point (27.8 / 15.8 / 34.3).

``--cv`` checks how the detector's settings generalise: leave one NAB category out (the two
artificial categories count as one, since artificialNoAnomaly has no window), choose the rest
period among a few generic values and the seasonal change on or off on the other categories,
and score the held-out category, both with its own best threshold (as NAB does) and with the
threshold chosen on the others; the last column is the detector before the seasonal change.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks import FIXTURES
from benchmarks.nab_score import (
    Corpus,
    load_corpus,
    score_corpus,
    sub_corpus,
    zscore_baseline,
)
from pipeline.domain.detectors import SurpriseDetector

DEFAULT_ROOT = FIXTURES / "nab"
CALIBRATION = {"standard": 27.8, "lowFP": 15.8, "lowFN": 34.3}

Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]


def run_stormwatch(
    values: np.ndarray, epochs: np.ndarray, params: dict[str, Any] | None = None
) -> np.ndarray:
    """The detector as the worker runs it (samples carry their time: time-of-day profile)."""
    det = SurpriseDetector(**(params or {}))
    f = det.score_learn
    return np.fromiter(
        (f(v, "value", t) for v, t in zip(values.tolist(), epochs.tolist(), strict=True)),
        dtype=float,
        count=len(values),
    )


def run_stormwatch_values(values: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """The detector fed values only (no time-of-day profile)."""
    del epochs
    det = SurpriseDetector()
    f = det.score_learn
    return np.fromiter((f(v) for v in values.tolist()), dtype=float, count=len(values))


def run_zscore(values: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    del epochs
    return zscore_baseline(values)


def run_hst(values: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """River HalfSpaceTrees with default parameters, on min-max scaled values (as River's docs)."""
    from river import anomaly, preprocessing

    del epochs
    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)
    out = np.empty(len(values))
    for i, v in enumerate(values.tolist()):
        x = {"value": v}
        out[i] = model.score_one(x)
        model.learn_one(x)
    return out


DETECTORS: dict[str, Runner] = {
    "stormwatch SurpriseDetector": run_stormwatch,
    "  same, values only (no time)": run_stormwatch_values,
    "z-score prev 1000 (README)": run_zscore,
    "River HST (defaults)": run_hst,
}


def _plain(o: Any) -> Any:
    """numpy scalars (thresholds, counts) as Python numbers for JSON."""
    return o.item() if isinstance(o, np.generic) else str(o)


def _epochs(timestamps: list[str]) -> np.ndarray:
    """NAB timestamps (``YYYY-MM-DD HH:MM:SS``, no zone) as epoch seconds, read as UTC."""
    return np.array(
        [datetime.fromisoformat(ts).replace(tzinfo=UTC).timestamp() for ts in timestamps]
    )


CV_GRID: tuple[dict[str, Any], ...] = tuple(
    {"rest": r, "season_change": c} for c in (False, True) for r in (0, 100, 150, 200)
)
CV_BEFORE = "rest=150, season_change=False"  # the detector before the seasonal change


def category(name: str) -> str:
    """CV fold of a file: its NAB category, the two artificial ones merged."""
    cat = name.split("/", 1)[0]
    return "artificial" if cat.startswith("artificial") else cat


def score_at_threshold(corpus: Corpus, scores: dict[str, np.ndarray], threshold: float) -> float:
    """Standard-profile score of ``corpus`` with a fixed threshold (alarms: score >= threshold)."""
    binary = {f.name: (np.asarray(scores[f.name]) >= threshold).astype(float) for f in corpus.files}
    return score_corpus(corpus, binary)["standard"].score if threshold < np.inf else 0.0


def cross_validate(
    corpus: Corpus, runs: dict[str, dict[str, np.ndarray]]
) -> list[tuple[str, str, float, float, float]]:
    """Leave one category out. ``runs``: candidate name -> per-file scores.

    Returns per held-out category: (category, candidate chosen on the others, its standard
    score on the others, held-out score at the held-out best threshold, held-out score at the
    others' threshold).
    """
    cats = sorted({category(f.name) for f in corpus.files})
    out = []
    for held in cats:
        train = sub_corpus(corpus, [f.name for f in corpus.files if category(f.name) != held])
        test = sub_corpus(corpus, [f.name for f in corpus.files if category(f.name) == held])
        fits = {c: score_corpus(train, s)["standard"] for c, s in runs.items()}
        best = max(fits, key=lambda c: fits[c].score)  # first of equals: grid order
        own = score_corpus(test, runs[best])["standard"].score
        fixed = score_at_threshold(test, runs[best], fits[best].threshold)
        out.append((held, best, fits[best].score, own, fixed))
    return out


def run_cv(
    console: Console, corpus: Corpus, series: dict[str, Any], epochs: dict[str, Any]
) -> dict[str, Any]:
    runs: dict[str, dict[str, np.ndarray]] = {}
    for params in CV_GRID:
        name = ", ".join(f"{k}={v}" for k, v in params.items())
        runs[name] = {f: run_stormwatch(v, epochs[f], params) for f, (_, v) in series.items()}
    before = runs[CV_BEFORE]
    table = Table(title="leave-one-category-out (standard profile; settings chosen on the others)")
    for col in ("held out", "chosen", "others", "held out", "held out @ others' thr", "before"):
        table.add_column(col, justify="left" if col in ("held out", "chosen") else "right")
    rows = cross_validate(corpus, runs)
    for held, best, fit, own, fixed in rows:
        test = sub_corpus(corpus, [f.name for f in corpus.files if category(f.name) == held])
        dflt = score_corpus(test, before)["standard"].score
        table.add_row(held, best, f"{fit:.1f}", f"{own:.1f}", f"{fixed:.1f}", f"{dflt:.1f}")
    console.print(table)
    mean_own = sum(r[3] for r in rows) / len(rows)
    mean_fixed = sum(r[4] for r in rows) / len(rows)
    mean_before = sum(
        score_corpus(
            sub_corpus(corpus, [f.name for f in corpus.files if category(f.name) == r[0]]), before
        )["standard"].score
        for r in rows
    ) / len(rows)
    console.print(
        f"mean held-out score: {mean_own:.1f} (own threshold), {mean_fixed:.1f} (others' "
        f"threshold), {mean_before:.1f} before ({CV_BEFORE}); candidates: rest in "
        f"{sorted({p['rest'] for p in CV_GRID})} x season_change in {{False, True}}"
    )
    return {
        "folds": [
            {"held_out": h, "chosen": b, "others": fit, "held_out_score": own, "at_others": fx}
            for h, b, fit, own, fx in rows
        ],
        "mean_held_out": mean_own,
        "mean_at_others_threshold": mean_fixed,
        "mean_before": mean_before,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.nab", description=__doc__)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="NAB data (data/, labels/)")
    ap.add_argument(
        "--only", choices=["stormwatch", "values-only", "zscore", "hst"], action="append"
    )
    ap.add_argument(
        "--cv", action="store_true", help="also cross-validate the settings across categories"
    )
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    console = Console(width=120)
    corpus, series = load_corpus(args.root)
    n_rows = sum(f.n_rows for f in corpus.files)
    console.print(
        f"NAB development set: {len(corpus.files)} files, {corpus.n_windows} windows, "
        f"{n_rows:,} rows ({args.root})"
    )
    keys = {"stormwatch": 0, "values-only": 1, "zscore": 2, "hst": 3}
    epochs = {fname: _epochs(ts) for fname, (ts, _) in series.items()}
    chosen = list(DETECTORS.items())
    if args.only:
        chosen = [chosen[keys[k]] for k in args.only]

    table = Table(title="NAB scores (normalised, 100 = perfect, 0 = null detector)")
    for col in ("detector", "standard", "lowFP", "lowFN", "thr (std)", "TP/FP (std)", "samples/s"):
        table.add_column(col, justify="left" if col == "detector" else "right")
    ok = True
    figures: dict[str, Any] = {
        "files": len(corpus.files),
        "windows": corpus.n_windows,
        "rows": n_rows,
    }
    detectors: dict[str, Any] = {}
    for name, runner in chosen:
        scores: dict[str, np.ndarray] = {}
        elapsed = 0.0
        for fname, (_, values) in series.items():
            t0 = time.perf_counter()
            scores[fname] = runner(values, epochs[fname])
            elapsed += time.perf_counter() - t0
        res = score_corpus(corpus, scores)
        if runner is run_zscore:
            got = {k: round(r.score, 1) for k, r in res.items()}
            ok = got == CALIBRATION
            figures["calibration"] = {"got": got, "expected": CALIBRATION, "matches": ok}
            console.print(
                f"scorer calibration (README z-score baseline): {got} "
                f"{'matches' if ok else 'DOES NOT MATCH'} the README's {CALIBRATION}"
            )
        std = res["standard"]
        table.add_row(
            name,
            f"{res['standard'].score:.1f}",
            f"{res['lowFP'].score:.1f}",
            f"{res['lowFN'].score:.1f}",
            f"{std.threshold:.6g}",
            f"{std.tp}/{std.fp}",
            f"{n_rows / elapsed:,.0f}" if elapsed else "-",
        )
        detectors[name.strip()] = {
            **{profile: asdict(r) for profile, r in res.items()},
            "samples_per_s": n_rows / elapsed if elapsed else None,
        }
    console.print(table)
    figures["detectors"] = detectors
    if args.cv:
        figures["cv"] = run_cv(console, corpus, series, epochs)
    console.print(
        "samples/s: one core, whole set, one detector per series (numpy-vectorised for the "
        "z-score baseline)."
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=_plain))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
