"""The bench's memory-flatness verdict (``make bench``: memory flat over the 1M run)."""

from __future__ import annotations

from benchmarks.streaming.backlog import Run
from benchmarks.streaming.memory import memory_note

MB = 2**20


def _run(rss: list[float]) -> Run:
    n = len(rss)
    samples = [(1000.0 * (i + 1), int(mb * MB)) for i, mb in enumerate(rss)]
    return Run(
        alerts=1000 * n,
        processed=1000.0 * n,
        seconds=1.0,
        rate=1.0,
        finished=True,
        stalled=False,
        peak_rss=[int(max(rss) * MB)],
        rss_samples=samples,
    )


def test_a_plateau_with_one_low_sample_at_a_quarter_is_flat() -> None:
    rss = [200.0, 260.0, 288.0, 290.0, 264.0, 289.0, 290.0, 288.0] + [291.0, 293.0] * 6
    assert memory_note(_run(rss)).endswith(": flat")


def test_steady_growth_is_not_flat() -> None:
    rss = [200.0 + 10 * i for i in range(20)]
    assert memory_note(_run(rss)).endswith("NOT flat")


def test_too_few_samples_give_no_verdict() -> None:
    assert memory_note(_run([200.0, 300.0, 400.0])) == ""
