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
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from pipeline.bench.nab_score import load_corpus, score_corpus, zscore_baseline
from pipeline.domain.detectors import SurpriseDetector

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "benchmarks" / "fixtures" / "nab"
CALIBRATION = {"standard": 27.8, "lowFP": 15.8, "lowFN": 34.3}

Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]


def run_stormwatch(values: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """The detector as the worker runs it (samples carry their time: time-of-day profile)."""
    det = SurpriseDetector()
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


def _epochs(timestamps: list[str]) -> np.ndarray:
    """NAB timestamps (``YYYY-MM-DD HH:MM:SS``, no zone) as epoch seconds, read as UTC."""
    return np.array(
        [datetime.fromisoformat(ts).replace(tzinfo=UTC).timestamp() for ts in timestamps]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.bench.nab", description=__doc__)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="NAB data (data/, labels/)")
    ap.add_argument(
        "--only", choices=["stormwatch", "values-only", "zscore", "hst"], action="append"
    )
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
