"""``make bench-nab``: NAB scores of stormwatch's detector and two baselines, side by side.

Runs every detector online over every file of ``benchmarks/fixtures/nab`` (35 development
files of NAB), scores them with the project's own NAB scorer (:mod:`pipeline.bench.nab_score`),
and prints standard / lowFP / lowFN scores and each detector's throughput. The first line
checks the scorer against the README's calibration point (27.8 / 15.8 / 34.3).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from pipeline.bench.nab_score import load_corpus, score_corpus, zscore_baseline
from pipeline.domain.detectors import SurpriseDetector

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "benchmarks" / "fixtures" / "nab"
CALIBRATION = {"standard": 27.8, "lowFP": 15.8, "lowFN": 34.3}

Runner = Callable[[np.ndarray], np.ndarray]


def run_stormwatch(values: np.ndarray) -> np.ndarray:
    det = SurpriseDetector()
    f = det.score_learn
    return np.fromiter((f(v) for v in values.tolist()), dtype=float, count=len(values))


def run_hst(values: np.ndarray) -> np.ndarray:
    """River HalfSpaceTrees with default parameters, on min-max scaled values (as River's docs)."""
    from river import anomaly, preprocessing

    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)
    out = np.empty(len(values))
    for i, v in enumerate(values.tolist()):
        x = {"value": v}
        out[i] = model.score_one(x)
        model.learn_one(x)
    return out


DETECTORS: dict[str, Runner] = {
    "stormwatch SurpriseDetector": run_stormwatch,
    "z-score prev 1000 (README)": zscore_baseline,
    "River HST (defaults)": run_hst,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.bench.nab", description=__doc__)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="NAB data (data/, labels/)")
    ap.add_argument("--only", choices=["stormwatch", "zscore", "hst"], action="append")
    args = ap.parse_args(argv)
    console = Console(width=120)
    corpus, series = load_corpus(args.root)
    n_rows = sum(f.n_rows for f in corpus.files)
    console.print(
        f"NAB development set: {len(corpus.files)} files, {corpus.n_windows} windows, "
        f"{n_rows:,} rows ({args.root})"
    )
    keys = {"stormwatch": 0, "zscore": 1, "hst": 2}
    chosen = list(DETECTORS.items())
    if args.only:
        chosen = [chosen[keys[k]] for k in args.only]

    table = Table(title="NAB scores (normalised, 100 = perfect, 0 = null detector)")
    for col in ("detector", "standard", "lowFP", "lowFN", "thr (std)", "TP/FP (std)", "samples/s"):
        table.add_column(col, justify="left" if col == "detector" else "right")
    ok = True
    for name, runner in chosen:
        scores: dict[str, np.ndarray] = {}
        elapsed = 0.0
        for fname, (_, values) in series.items():
            t0 = time.perf_counter()
            scores[fname] = runner(values)
            elapsed += time.perf_counter() - t0
        res = score_corpus(corpus, scores)
        if runner is zscore_baseline:
            got = {k: round(r.score, 1) for k, r in res.items()}
            ok = got == CALIBRATION
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
    console.print(table)
    console.print(
        "samples/s: one core, whole set, one detector per series (numpy-vectorised for the "
        "z-score baseline)."
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
