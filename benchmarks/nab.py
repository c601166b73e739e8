"""``make bench-nab``: NAB scores of stormwatch's detector and two baselines, side by side.

Runs every detector online over every file of ``benchmarks/fixtures/nab`` (35 development
files of NAB), scores them with the project's own NAB scorer (:mod:`benchmarks.nab_score`),
and prints standard / lowFP / lowFN scores and each detector's throughput. The first line
checks the scorer against the README's calibration point (27.8 / 15.8 / 34.3).

Every detector is also scored on the synthetic kinds of :mod:`benchmarks.nab_synthetic`
(bursty counts, traffic with daily and weekly cycles, ad prices with sparse spikes and level
shifts): the kinds of series the development files have few of.

``--cv`` checks how the detector's settings generalise: leave one category out among the
three NAB categories (the two artificial ones count as one, since artificialNoAnomaly has no
window) and the three synthetic kinds, choose the settings of ``CV_GRID`` on the other five,
and score the held-out category, both with its own best threshold (as NAB does) and with the
threshold chosen on the others; the last column is the detector before these settings.
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
from benchmarks.nab_synthetic import KINDS, SyntheticSeries, score_synthetic, synthetic_set
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


#: the settings chosen by leave-one-category-out (rest and season_change were chosen so before)
CV_GRID: tuple[dict[str, Any], ...] = tuple(
    {"row_s": r, "weekly_gate": w, "counts": c, "calibrate_q": q}
    for r in (0.0, 300.0)
    for w in (0.0, 0.8)
    for c in (False, True)
    for q in (0.0, 0.98, 0.99)
)
#: the detector before these settings
CV_BEFORE = "row_s=0.0, weekly_gate=0.0, counts=False, calibrate_q=0.0"


def cv_name(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


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
    console: Console,
    dev: Corpus,
    series: dict[str, Any],
    epochs: dict[str, Any],
    synthetic: tuple[Corpus, list[SyntheticSeries]],
) -> dict[str, Any]:
    syn_corpus, syn_series = synthetic
    corpus = sub_corpus(
        Corpus(dev.files + syn_corpus.files), [f.name for f in dev.files + syn_corpus.files]
    )
    inputs = {f: (v, epochs[f]) for f, (_, v) in series.items()}
    inputs.update({s.name: (s.values, s.epochs) for s in syn_series})
    runs: dict[str, dict[str, np.ndarray]] = {}
    for params in CV_GRID:
        runs[cv_name(params)] = {f: run_stormwatch(v, t, params) for f, (v, t) in inputs.items()}
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
    befores = [
        score_corpus(
            sub_corpus(corpus, [f.name for f in corpus.files if category(f.name) == r[0]]), before
        )["standard"].score
        for r in rows
    ]
    mean_before = sum(befores) / len(rows)
    nab_rows = [r for r in rows if r[0] not in KINDS]
    syn_rows = [r for r in rows if r[0] in KINDS]
    console.print(
        f"mean held-out score: {mean_own:.1f} (own threshold), {mean_fixed:.1f} (others' "
        f"threshold), {mean_before:.1f} before ({CV_BEFORE}); NAB folds "
        f"{_mean(nab_rows, 3):.1f}, synthetic folds {_mean(syn_rows, 3):.1f}; "
        f"{len(CV_GRID)} candidates: row_s x weekly_gate x counts x calibrate_q"
    )
    everywhere = {c: score_corpus(corpus, s)["standard"].score for c, s in runs.items()}
    best_all = max(everywhere, key=lambda c: everywhere[c])
    console.print(
        f"best on all six categories together: {best_all} ({everywhere[best_all]:.1f}); "
        f"before: {everywhere[CV_BEFORE]:.1f}"
    )
    return {
        "folds": [
            {
                "held_out": h,
                "chosen": b,
                "others": fit,
                "held_out_score": own,
                "at_others": fx,
                "before": bf,
            }
            for (h, b, fit, own, fx), bf in zip(rows, befores, strict=True)
        ],
        "mean_held_out": mean_own,
        "mean_at_others_threshold": mean_fixed,
        "mean_before": mean_before,
        "mean_held_out_nab": _mean(nab_rows, 3),
        "mean_held_out_synthetic": _mean(syn_rows, 3),
        "all_categories": everywhere,
        "best_on_all": best_all,
    }


def _mean(rows: list[tuple[str, str, float, float, float]], col: int) -> float:
    return sum(float(r[col]) for r in rows) / len(rows) if rows else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.nab", description=__doc__)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="NAB data (data/, labels/)")
    ap.add_argument(
        "--only", choices=["stormwatch", "values-only", "zscore", "hst"], action="append"
    )
    ap.add_argument(
        "--cv", action="store_true", help="also cross-validate the settings across categories"
    )
    ap.add_argument(
        "--synthetic-files", type=int, default=8, help="synthetic files per kind (default 8)"
    )
    ap.add_argument("--seed", type=int, default=1, help="seed of the synthetic set")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if args.synthetic_files < 1:
        ap.error(f"--synthetic-files must be >= 1 (got {args.synthetic_files})")
    console = Console(width=120)
    corpus, series = load_corpus(args.root)
    n_rows = sum(f.n_rows for f in corpus.files)
    console.print(
        f"NAB development set: {len(corpus.files)} files, {corpus.n_windows} windows, "
        f"{n_rows:,} rows ({args.root})"
    )
    synthetic = synthetic_set(args.synthetic_files, args.seed)
    syn_corpus, syn_series = synthetic
    console.print(
        f"synthetic kinds (seed {args.seed}): {len(syn_series)} files, {syn_corpus.n_windows} "
        f"windows, {sum(len(x.values) for x in syn_series):,} rows ({', '.join(KINDS)})"
    )
    keys = {"stormwatch": 0, "values-only": 1, "zscore": 2, "hst": 3}
    epochs = {fname: _epochs(ts) for fname, (ts, _) in series.items()}
    chosen = list(DETECTORS.items())
    if args.only:
        chosen = [chosen[keys[k]] for k in args.only]

    table = Table(title="NAB scores (normalised, 100 = perfect, 0 = null detector)")
    for col in ("detector", "standard", "lowFP", "lowFN", "thr (std)", "TP/FP (std)", "samples/s"):
        table.add_column(col, justify="left" if col == "detector" else "right")
    syn_table = Table(title="synthetic kinds: standard / lowFP / lowFN (own threshold per kind)")
    for col in ("detector", "all", *KINDS):
        syn_table.add_column(col, justify="left" if col == "detector" else "right")
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
            t0 = time.process_time()
            scores[fname] = runner(values, epochs[fname])
            elapsed += time.process_time() - t0
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
        syn = score_synthetic(syn_corpus, syn_series, runner)
        syn_table.add_row(
            name, *(" / ".join(f"{v:.1f}" for v in syn[g].values()) for g in ("all", *KINDS))
        )
        detectors[name.strip()] = {
            **{profile: asdict(r) for profile, r in res.items()},
            "samples_per_s": n_rows / elapsed if elapsed else None,
            "synthetic": syn,
        }
        if runner is run_stormwatch:
            figures["nab_standard_dev"] = res["standard"].score
            figures["synthetic_standard"] = syn["all"]["standard"]
            for kind in KINDS:
                figures[f"synthetic_standard_{kind}"] = syn[kind]["standard"]
    console.print(table)
    console.print(syn_table)
    figures["detectors"] = detectors
    if args.cv:
        figures["cv"] = run_cv(console, corpus, series, epochs, synthetic)
        figures["nab_loco_mean"] = figures["cv"]["mean_held_out"]
    console.print(
        "samples/s: CPU time of this process (one core), whole set, one detector per series "
        "(numpy-vectorised for the z-score baseline)."
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=_plain))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
