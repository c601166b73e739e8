"""Memory of the bench's processes: RSS sampling and the flatness verdict over a run."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from benchmarks.streaming.backlog import Run


def rss_of(pids: list[int]) -> list[int]:
    """Resident set size of each process, 0 for one that is gone."""
    out = []
    for pid in pids:
        try:
            out.append(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            out.append(0)
    return out


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def memory_note(run: Run) -> str:
    """Median RSS over the second quarter of the run against the median over the last quarter
    (medians: a single sample can land on a moment between two garbage collections)."""
    samples = [(c, m) for c, m in run.rss_samples if c > 0]
    if len(samples) < 8:
        return ""
    total = samples[-1][0]
    second = [m for c, m in samples if total / 4 <= c < total / 2]
    last = [m for c, m in samples if c >= 3 * total / 4]
    if not second or not last:
        return ""
    before, after = statistics.median(second), statistics.median(last)
    growth = (after - before) / max(before, 1)
    flat = "flat" if growth < 0.1 else "NOT flat"
    return f"median {mb(before)} over 25-50% -> {mb(after)} over 75-100% ({growth:+.0%}): {flat}"
