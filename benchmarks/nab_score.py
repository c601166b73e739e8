"""stormwatch's own implementation of NAB scoring (Numenta Anomaly Benchmark).

The rules are the ones written in ``benchmarks/fixtures/nab/README.md``:

* the first 15 % of each file's rows (at most 750) are a probationary period, not scored;
* a window earns ``A_TP * f(position) / f(-1)`` for its earliest alarm, ``f(x) = 2/(1+e^(5x)) - 1``
  and ``position = -(rows from the alarm to the window's end, both counted) / width``;
* a window without alarm costs ``A_FN``;
* an alarm outside every window costs ``A_FP * f(d / (w - 1))`` (``d`` rows after the end of the
  preceding window of width ``w``), or the full ``A_FP`` before any window;
* one threshold for the whole set, chosen (per profile) among every distinct score value and
  "no alarm" to maximise the raw score; normalised as ``100 (raw - null) / (perfect - null)``.

The sweep is exact and O(n log n): rows are sorted by score once, and each profile's raw score
at every candidate threshold is a linear combination of three cumulative quantities (the sum of
true-positive rewards, the sum of unit false-positive costs, the number of detected windows).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

PROBATION_PERCENT = 0.15
PROBATION_MAX_ROWS = 750


@dataclass(frozen=True)
class Profile:
    name: str
    a_tp: float
    a_fp: float
    a_fn: float


PROFILES: tuple[Profile, ...] = (
    Profile("standard", 1.0, 0.11, 1.0),
    Profile("lowFP", 1.0, 0.22, 1.0),
    Profile("lowFN", 1.0, 0.11, 2.0),
)


def scaled_sigmoid(x: float) -> float:
    """NAB's ``f(x) = 2 / (1 + e^(5x)) - 1`` (exactly -1 beyond x = 3, as NAB does)."""
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def probation_rows(n_rows: int) -> int:
    """Rows at the start of a file that are not scored."""
    return min(math.floor(PROBATION_PERCENT * n_rows), PROBATION_MAX_ROWS)


@dataclass
class FileRows:
    """Per-row scoring facts of one file, independent of the detector."""

    name: str
    n_rows: int
    windows: list[tuple[int, int]]  # inclusive row index ranges, in file order
    # for each row: window index (global across the set) or -1
    window_of: np.ndarray = field(repr=False)
    # reward if this row is the earliest alarm of its window (A_TP = 1)
    tp_reward: np.ndarray = field(repr=False)
    # unit false-positive value (negative, in [-1, 0]) if the row is outside every window
    fp_unit: np.ndarray = field(repr=False)
    scored: np.ndarray = field(repr=False)  # False in the probationary period


def _parse_ts(ts: str) -> str:
    """Normalise a timestamp to ``YYYY-MM-DD HH:MM:SS`` (labels carry ``.000000``)."""
    return ts.strip().split(".")[0]


def window_rows(
    timestamps: Sequence[str], windows: Iterable[Sequence[str]]
) -> list[tuple[int, int]]:
    """Turn ``[start, end]`` timestamp windows into inclusive row ranges.

    A window runs from the first row carrying its start timestamp to the last row carrying
    its end timestamp (files can repeat timestamps; rows are never dropped or merged).
    """
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, ts in enumerate(timestamps):
        key = _parse_ts(ts)
        first.setdefault(key, i)
        last[key] = i
    out: list[tuple[int, int]] = []
    for win in windows:
        start, end = _parse_ts(win[0]), _parse_ts(win[1])
        if start not in first or end not in last:
            raise ValueError(f"window {win!r} does not match timestamps of the file")
        out.append((first[start], last[end]))
    out.sort()
    return out


def file_rows(
    name: str, timestamps: Sequence[str], windows: Iterable[Sequence[str]], base: int
) -> FileRows:
    """Precompute per-row rewards and costs of one file; ``base`` numbers its windows globally."""
    n = len(timestamps)
    wins = window_rows(timestamps, windows)
    window_of = np.full(n, -1, dtype=np.int64)
    tp_reward = np.zeros(n)
    fp_unit = np.zeros(n)
    max_tp = scaled_sigmoid(-1.0)
    for k, (s, e) in enumerate(wins):
        width = e - s + 1
        for i in range(s, e + 1):
            window_of[i] = base + k
            position = -(e - i + 1) / width
            tp_reward[i] = scaled_sigmoid(position) / max_tp
    prev_end: int | None = None
    prev_width = 0
    k = 0
    for i in range(n):
        while k < len(wins) and wins[k][1] < i:
            prev_end, prev_width = wins[k][1], wins[k][1] - wins[k][0] + 1
            k += 1
        if window_of[i] >= 0:
            continue
        if prev_end is None:
            fp_unit[i] = -1.0
        else:
            denom = float(prev_width - 1) if prev_width > 1 else 1.0
            fp_unit[i] = scaled_sigmoid(abs(i - prev_end) / denom)
    scored = np.ones(n, dtype=bool)
    scored[: probation_rows(n)] = False
    return FileRows(name, n, wins, window_of, tp_reward, fp_unit, scored)


@dataclass
class ProfileResult:
    profile: str
    score: float
    threshold: float
    raw: float
    tp: int
    fp: int
    fn: int


@dataclass
class Corpus:
    """The scoring facts of a set of files (what the detector's scores are judged against)."""

    files: list[FileRows]

    @property
    def n_windows(self) -> int:
        return sum(len(f.windows) for f in self.files)


def sub_corpus(corpus: Corpus, names: Iterable[str]) -> Corpus:
    """The files of ``corpus`` named in ``names`` (in corpus order), windows renumbered."""
    keep = set(names)
    files: list[FileRows] = []
    base = 0
    for f in corpus.files:
        if f.name not in keep:
            continue
        wo = f.window_of
        if f.windows:
            old = int(wo[wo >= 0].min())
            wo = np.where(wo >= 0, wo - old + base, -1)
        files.append(replace(f, window_of=wo))
        base += len(f.windows)
    return Corpus(files)


def load_corpus(
    root: Path, names: Sequence[str] | None = None
) -> tuple[Corpus, dict[str, tuple[list[str], np.ndarray]]]:
    """Read NAB data under ``root`` (``data/`` and ``labels/``): corpus + per-file (ts, values)."""
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    if names is None:
        names = sorted(str(p.relative_to(root / "data")) for p in (root / "data").rglob("*.csv"))
    files: list[FileRows] = []
    series: dict[str, tuple[list[str], np.ndarray]] = {}
    base = 0
    for name in names:
        ts, vals = read_series(root / "data" / name)
        fr = file_rows(name, ts, labels.get(name, []), base)
        base += len(fr.windows)
        files.append(fr)
        series[name] = (ts, vals)
    return Corpus(files), series


def read_series(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        ts: list[str] = []
        vals: list[float] = []
        for row in reader:
            ts.append(row[0])
            vals.append(float(row[1]))
    return ts, np.asarray(vals, dtype=float)


def score_corpus(
    corpus: Corpus,
    scores: Mapping[str, Sequence[float] | np.ndarray],
    profiles: Sequence[Profile] = PROFILES,
) -> dict[str, ProfileResult]:
    """Normalised NAB score per profile for ``scores`` (file name -> one score per row)."""
    s_list, w_list, tp_list, fp_list = [], [], [], []
    for f in corpus.files:
        arr = np.asarray(scores[f.name], dtype=float)
        if arr.shape != (f.n_rows,):
            raise ValueError(f"{f.name}: {arr.shape[0]} scores for {f.n_rows} rows")
        m = f.scored
        s_list.append(arr[m])
        w_list.append(f.window_of[m])
        tp_list.append(f.tp_reward[m])
        fp_list.append(f.fp_unit[m])
    s = np.concatenate(s_list)
    win = np.concatenate(w_list)
    tpr = np.concatenate(tp_list)
    fpu = np.concatenate(fp_list)
    n_windows = corpus.n_windows

    order = np.argsort(-s, kind="stable")
    s, win, tpr, fpu = s[order], win[order], tpr[order], fpu[order]
    n = len(s)
    # cumulative quantities after including rows [0, i]
    cum_fp = np.cumsum(np.where(win < 0, fpu, 0.0))
    cum_fpn = np.cumsum(win < 0)
    tp_sum = np.empty(n)
    detected = np.empty(n, dtype=np.int64)
    best = np.full(max(n_windows, 1), -np.inf)
    total = 0.0
    ndet = 0
    for i in range(n):
        w = win[i]
        if w >= 0:
            r = tpr[i]
            b = best[w]
            if b == -np.inf:
                best[w] = r
                total += r
                ndet += 1
            elif r > b:
                best[w] = r
                total += r - b
        tp_sum[i] = total
        detected[i] = ndet
    # candidate thresholds: the last row of every run of equal scores
    last_of_run = np.ones(n, dtype=bool)
    if n > 1:
        last_of_run[:-1] = s[:-1] != s[1:]
    idx = np.nonzero(last_of_run)[0]

    results: dict[str, ProfileResult] = {}
    for p in profiles:
        null = -p.a_fn * n_windows
        perfect = p.a_tp * n_windows
        raw_at = p.a_tp * tp_sum[idx] + p.a_fp * cum_fp[idx] - p.a_fn * (n_windows - detected[idx])
        best_raw, best_thr, best_i = null, math.inf, -1
        if len(idx):
            j = int(np.argmax(raw_at))
            if raw_at[j] > best_raw:
                best_raw, best_thr, best_i = float(raw_at[j]), float(s[idx[j]]), int(idx[j])
        tp = int(detected[best_i]) if best_i >= 0 else 0
        fp = int(cum_fpn[best_i]) if best_i >= 0 else 0
        denom = perfect - null
        norm = 100.0 * (best_raw - null) / denom if denom else 0.0
        results[p.name] = ProfileResult(p.name, norm, best_thr, best_raw, tp, fp, n_windows - tp)
    return results


def zscore_baseline(
    values: Sequence[float] | np.ndarray, window: int = 1000, min_rows: int = 20
) -> np.ndarray:
    """The README's calibration detector, exactly as defined.

    ``z = |x - mean| / std`` of the previous ``window`` values (population std; 0 for the first
    ``min_rows`` rows; if std is 0, ``z = 0`` when x equals the mean, else ``1e6``);
    ``score = z / (1 + z)``.
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    out = np.zeros(n)
    c1 = np.concatenate([[0.0], np.cumsum(x)])
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    for i in range(min_rows, n):
        lo = max(0, i - window)
        k = i - lo
        mean = (c1[i] - c1[lo]) / k
        prev = x[lo:i]
        var = float(np.mean((prev - mean) ** 2)) if k else 0.0
        std = math.sqrt(var)
        z = (0.0 if x[i] == mean else 1000000.0) if std == 0.0 else abs(x[i] - mean) / std
        out[i] = z / (1.0 + z)
    del c2
    return out
