"""The storm bench's machine-speed probe and the scaling factor taken at the same speed."""

from __future__ import annotations

import math
import time

from benchmarks.streaming.backlog import Run
from benchmarks.streaming.connected import speed_adjusted
from benchmarks.streaming.speed import SpeedProbe


def _run(rate: float, probe_ms: float) -> Run:
    return Run(
        alerts=1000,
        processed=1000,
        seconds=1.0,
        rate=rate,
        finished=True,
        stalled=False,
        peak_rss=[],
        rss_samples=[],
        probe_ms=probe_ms,
    )


def test_probe_times_its_unit_while_the_block_runs() -> None:
    with SpeedProbe(period_s=0.02) as probe:
        time.sleep(0.3)
    assert len(probe.samples) >= 3
    assert all(ms > 0 for ms in probe.samples)
    assert probe.median_ms > 0
    done = len(probe.samples)
    time.sleep(0.1)
    assert len(probe.samples) == done  # stopped with the block


def test_a_run_on_a_machine_twice_as_slow_counts_at_the_same_speed() -> None:
    # the 1-worker run had the machine at half speed: its rate halved, its probe doubled
    one, two = _run(1000, 10.0), _run(3200, 5.0)
    assert two.rate / one.rate == 3.2
    assert speed_adjusted(one, two) == 1.6
    assert speed_adjusted(_run(2000, 5.0), _run(3200, 5.0)) == 1.6


def test_without_probe_samples_there_is_no_adjusted_figure() -> None:
    assert math.isnan(speed_adjusted(_run(1000, math.nan), _run(2000, 5.0)))
    assert math.isnan(speed_adjusted(_run(0, 5.0), _run(2000, 5.0)))
