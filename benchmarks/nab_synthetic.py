"""Labelled synthetic series of the kinds NAB's development files lack, scored by NAB's rules.

Three kinds, each built from how such series behave (not from NAB's numbers):

* ``counts``: event counts per 5 minutes (posts, messages). A rate with a daily and a weekly
  cycle and a slow drift, over-dispersed (gamma-Poisson) counts and frequent *unlabelled*
  short bursts (normal chatter). Anomalies: a burst far above the cycle that decays over
  hours (news), a drop to zero (collection outage), a lasting level shift.
* ``traffic``: road sensors every 5 minutes with gaps (occupancy %, speed, travel time). Two
  rush hours on weekdays, a flatter weekend, so daily *and* weekly cycles. Anomalies: an
  incident (occupancy and travel time far above, speed far below the cycle for under two
  hours), a sensor reading zero for hours, a day whose cycle is wrong (a weekday without rush
  hours), a recalibration (level shift).
* ``ads``: hourly cost per click / per thousand impressions. Multiplicative (log-normal) noise
  around a weak daily cycle, prices that are mostly positive with rare empty hours. Anomalies:
  sparse spikes of a few hours, level shifts (a campaign or price change), a drop to zero.

Anomaly windows follow NAB: width 10 % of the file's rows divided by its number of anomalies,
centred on the anomaly's first row, merged when they overlap and clipped at the file's end;
anomalies start after the probationary period. Seeded and deterministic.

``python -m benchmarks.nab_synthetic`` scores the detector (and the README's z-score floor) on
the generated set, per kind and overall, three profiles.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.nab_score import Corpus, file_rows, score_corpus, sub_corpus

KINDS: tuple[str, ...] = ("counts", "traffic", "ads")
DAY = 86_400
T0 = datetime(2025, 3, 3, tzinfo=UTC).timestamp()  # a Monday


@dataclass
class SyntheticSeries:
    """One generated file: timestamps (NAB format), values, anomaly onsets and windows."""

    name: str
    kind: str
    timestamps: list[str]
    epochs: np.ndarray
    values: np.ndarray
    anomalies: list[tuple[int, str]]  # (first row, anomaly type)
    windows: list[tuple[int, int]]  # inclusive row ranges


def _fmt(epochs: np.ndarray) -> list[str]:
    return [datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%d %H:%M:%S") for t in epochs]


def _bump(hours: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A daily Gaussian bump on the hour-of-day circle."""
    d = np.abs((hours - centre + 12.0) % 24.0 - 12.0)
    return np.asarray(np.exp(-0.5 * (d / width) ** 2))


def _onsets(rng: np.random.Generator, n: int, k: int) -> list[int]:
    """``k`` anomaly onsets after the probationary period, at least a window width apart."""
    width = max(int(0.1 * n / k), 2)
    lo, hi = int(0.2 * n), int(0.93 * n)
    for _ in range(200):
        xs = sorted(int(v) for v in rng.integers(lo, hi, size=k))
        if all(b - a > width for a, b in itertools.pairwise(xs)):
            return xs
    return sorted(int(v) for v in np.linspace(lo, hi, k))


def nab_windows(n: int, onsets: list[int]) -> list[tuple[int, int]]:
    """NAB's windows: width 10 % of the rows / anomalies, centred on each onset, merged."""
    if not onsets:
        return []
    width = int(0.1 * n / len(onsets))
    wins: list[tuple[int, int]] = []
    for o in sorted(onsets):
        s, e = max(0, o - width // 2), min(n - 1, o + width // 2)
        if wins and s <= wins[-1][1]:
            wins[-1] = (wins[-1][0], max(wins[-1][1], e))
        else:
            wins.append((s, e))
    return wins


def _rows_for(epochs: np.ndarray, start: int, seconds: float) -> slice:
    """Rows from ``start`` covering ``seconds`` of time."""
    end = int(np.searchsorted(epochs, epochs[start] + seconds, side="left"))
    return slice(start, max(end, start + 1))


# -- counts ---------------------------------------------------------------------------------


def _counts(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    days = int(rng.integers(28, 50))
    epochs = T0 + 300.0 * np.arange(days * 288)
    n = len(epochs)
    hours = (epochs % DAY) / 3600.0
    dow = ((epochs - T0) // DAY).astype(int) % 7
    base = float(np.exp(rng.uniform(np.log(3.0), np.log(150.0))))
    peak = float(rng.uniform(12.0, 20.0))
    daily = 0.25 + _bump(hours, peak, float(rng.uniform(2.5, 5.0)))
    weekly = np.where(dow >= 5, rng.uniform(0.5, 1.1), 1.0)
    drift = np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    rate = base * daily * weekly * drift
    # normal chatter: short unlabelled bursts, ~ one every 1-3 days, 1.5-3.5x for 15-90 min
    for start in np.flatnonzero(rng.random(n) < 1.0 / (288 * rng.uniform(1.0, 3.0))):
        length = int(rng.integers(3, 19))
        decay = np.exp(-np.arange(min(length, n - int(start))) / max(length / 3.0, 1.0))
        rate[start : start + length] *= 1.0 + rng.uniform(0.5, 2.5) * decay
    k = int(rng.integers(1, 4))
    anomalies: list[tuple[int, str]] = []
    for o in _onsets(rng, n, k):
        kind = str(rng.choice(["burst", "burst", "zero", "shift"]))
        if kind == "burst":
            length = int(rng.integers(12, 72))
            ramp = np.minimum(1.0, (np.arange(length) + 1) / rng.integers(1, 4))
            shape = ramp * np.exp(-np.arange(length) / (length / 3.0))
            seg = slice(o, min(n, o + length))
            rate[seg] *= 1.0 + rng.uniform(6.0, 25.0) * shape[: seg.stop - o]
        elif kind == "zero":
            rate[_rows_for(epochs, o, rng.uniform(2, 12) * 3600)] = 0.0
        else:
            factor = rng.uniform(2.5, 5.0) if rng.random() < 0.6 else rng.uniform(0.15, 0.35)
            rate[o : o + int(rng.integers(288, 288 * 6))] *= factor
        anomalies.append((o, kind))
    dispersion = float(rng.uniform(3.0, 20.0))
    lam = rate * rng.gamma(dispersion, 1.0 / dispersion, n)
    return epochs, rng.poisson(lam).astype(float), anomalies


# -- traffic --------------------------------------------------------------------------------


def _traffic(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    days = int(rng.integers(10, 20))
    grid = T0 + 300.0 * np.arange(days * 288)
    keep = rng.random(len(grid)) > rng.uniform(0.02, 0.15)
    for g in np.flatnonzero(rng.random(len(grid)) < 1.0 / 1500):  # outages of the feed
        keep[g : g + int(rng.integers(12, 72))] = False
    epochs = grid[keep] + rng.integers(-20, 21, int(keep.sum()))
    n = len(epochs)
    hours = (epochs % DAY) / 3600.0
    dow = ((epochs - T0) // DAY).astype(int) % 7
    am, pm = float(rng.uniform(7.0, 9.0)), float(rng.uniform(16.5, 18.5))
    weekday = 0.9 * _bump(hours, am, 1.0) + _bump(hours, pm, 1.3)
    weekend = 0.45 * _bump(hours, 14.0, 3.0)
    night = 0.08 + 0.25 * _bump(hours, 13.0, 5.0)
    shape = night + np.where(dow >= 5, weekend, weekday)
    level = np.ones(n)
    incident = np.zeros(n)
    zero = np.zeros(n, dtype=bool)
    k = int(rng.integers(1, 4))
    anomalies: list[tuple[int, str]] = []
    for o in _onsets(rng, n, k):
        kind = str(rng.choice(["incident", "incident", "zero", "cycle", "shift"]))
        if kind == "incident":
            seg = _rows_for(epochs, o, rng.uniform(0.5, 2.0) * 3600)
            incident[seg] = rng.uniform(1.0, 2.0)
        elif kind == "zero":
            zero[_rows_for(epochs, o, rng.uniform(1, 8) * 3600)] = True
        elif kind == "cycle":  # a weekday without its rush hours (holiday), or the reverse
            seg = _rows_for(epochs, o, DAY)
            flip = dow[seg] < 5
            shape[seg] = night[seg] + np.where(flip, weekend[seg], weekday[seg])
        else:
            level[o:] *= rng.uniform(1.4, 1.8) if rng.random() < 0.5 else rng.uniform(0.5, 0.7)
        anomalies.append((o, kind))
    sensor = str(rng.choice(["occupancy", "speed", "travel_time"]))
    noise = rng.normal(0.0, 1.0, n)
    if sensor == "occupancy":  # percent of time the loop is occupied
        v = level * (2.0 + rng.uniform(10.0, 25.0) * (shape + incident)) + 1.2 * noise
        v = np.clip(v, 0.0, 100.0)
    elif sensor == "speed":  # mph, lower at rush hour
        free = float(rng.uniform(55.0, 70.0))
        v = level * free * (1.0 - 0.45 * np.clip(shape + incident, 0.0, 1.6) / 1.6) + 2.5 * noise
        v = np.clip(v, 0.0, None)
    else:  # seconds for a road segment
        free = float(rng.uniform(200.0, 900.0))
        v = level * free * (1.0 + 0.8 * (shape + 1.5 * incident)) * np.exp(0.06 * noise)
    v[zero] = 0.0
    return epochs, np.round(v, 2), anomalies


# -- ads ------------------------------------------------------------------------------------


def _ads(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    days = int(rng.integers(50, 70))
    epochs = T0 + 3600.0 * np.arange(days * 24)
    keep = rng.random(len(epochs)) > 0.01
    epochs = epochs[keep]
    n = len(epochs)
    hours = (epochs % DAY) / 3600.0
    base = float(np.exp(rng.uniform(np.log(0.05), np.log(3.0))))
    sigma = float(rng.uniform(0.08, 0.35))
    log_level = np.log(base) + 0.15 * _bump(hours, float(rng.uniform(0, 24)), 4.0)
    log_level += np.cumsum(rng.normal(0.0, 0.01, n))
    empty = rng.random(n) < rng.uniform(0.0, 0.02)  # hours with no clicks: price 0
    k = int(rng.integers(1, 4))
    anomalies: list[tuple[int, str]] = []
    for o in _onsets(rng, n, k):
        kind = str(rng.choice(["spike", "spike", "shift", "zero"]))
        if kind == "spike":
            log_level[o : o + int(rng.integers(1, 4))] += np.log(rng.uniform(3.0, 10.0))
        elif kind == "shift":
            up = rng.random() < 0.5
            log_level[o:] += np.log(rng.uniform(1.8, 3.0) if up else rng.uniform(0.3, 0.5))
        else:
            empty[o : o + int(rng.integers(6, 30))] = True
        anomalies.append((o, kind))
    v = np.exp(log_level + sigma * rng.normal(0.0, 1.0, n))
    v[empty] = 0.0
    return epochs, np.round(v, 4), anomalies


GENERATORS: dict[
    str, Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]]
] = {"counts": _counts, "traffic": _traffic, "ads": _ads}


def generate(kind: str, n_files: int, seed: int) -> list[SyntheticSeries]:
    """``n_files`` series of ``kind``; file ``i`` depends only on (kind, seed, i)."""
    out = []
    for i in range(n_files):
        rng = np.random.default_rng([seed, KINDS.index(kind), i])
        epochs, values, anomalies = GENERATORS[kind](rng)
        epochs = epochs.astype(float)
        wins = nab_windows(len(values), [o for o, _ in anomalies])
        out.append(
            SyntheticSeries(
                f"{kind}/{kind}_{i:02d}.csv", kind, _fmt(epochs), epochs, values, anomalies, wins
            )
        )
    return out


def synthetic_set(
    n_files: int = 8, seed: int = 1, kinds: tuple[str, ...] = KINDS
) -> tuple[Corpus, list[SyntheticSeries]]:
    """The scoring corpus and the series of ``n_files`` files per kind."""
    series = [s for kind in kinds for s in generate(kind, n_files, seed)]
    files = []
    base = 0
    for s in series:
        wins = [(s.timestamps[a], s.timestamps[b]) for a, b in s.windows]
        files.append(file_rows(s.name, s.timestamps, wins, base))
        base += len(s.windows)
    return Corpus(files), series


Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]


def score_synthetic(
    corpus: Corpus, series: list[SyntheticSeries], runner: Runner
) -> dict[str, dict[str, float]]:
    """Per kind (own best threshold, as NAB scores a category) and ``all``: profile -> score."""
    scores = {s.name: runner(s.values, s.epochs) for s in series}
    out: dict[str, dict[str, float]] = {}
    groups = {"all": [s.name for s in series]}
    for kind in dict.fromkeys(s.kind for s in series):
        groups[kind] = [s.name for s in series if s.kind == kind]
    for g, names in groups.items():
        res = score_corpus(sub_corpus(corpus, names), scores)
        out[g] = {p: r.score for p, r in res.items()}
    return out


def write_csvs(series: list[SyntheticSeries], root: Path) -> None:
    """The set in NAB's layout (``data/<kind>/*.csv``, ``labels/combined_windows.json``)."""
    labels: dict[str, list[list[str]]] = {}
    for s in series:
        path = root / "data" / s.name
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = "".join(f"{t},{v:g}\n" for t, v in zip(s.timestamps, s.values, strict=True))
        path.write_text("timestamp,value\n" + rows)
        labels[s.name] = [
            [s.timestamps[a] + ".000000", s.timestamps[b] + ".000000"] for a, b in s.windows
        ]
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels, indent=1))


def main(argv: list[str] | None = None) -> int:
    from benchmarks.nab import run_stormwatch, run_zscore

    ap = argparse.ArgumentParser(prog="python -m benchmarks.nab_synthetic", description=__doc__)
    ap.add_argument("--files", type=int, default=8, help="files per kind (default 8)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write", type=Path, help="also write the set as NAB-layout CSVs here")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if args.files < 1:
        ap.error(f"--files must be >= 1 (got {args.files})")
    corpus, series = synthetic_set(args.files, args.seed)
    if args.write:
        write_csvs(series, args.write)
    print(
        f"synthetic set (seed {args.seed}): {len(series)} files, {corpus.n_windows} windows, "
        f"{sum(len(s.values) for s in series):,} rows"
    )
    figures: dict[str, Any] = {}
    for name, runner in (("stormwatch", run_stormwatch), ("zscore", run_zscore)):
        res = score_synthetic(corpus, series, runner)
        figures[name] = res
        for g, r in res.items():
            print(f"{name:10s} {g:8s} " + "  ".join(f"{p} {v:6.1f}" for p, v in r.items()))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
