"""Metric anomaly detectors and the per-(service, metric) bank."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.domain.detectors import (
    ANOMALY_SOURCE,
    DetectorBank,
    DetectorSettings,
    SurpriseDetector,
)
from pipeline.domain.schemas import MetricSample
from pipeline.offline.detect import DetectInputError, run_detect

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _series(n: int = 2000, seed: int = 1, spike_at: int | None = 1500) -> list[float]:
    rng = random.Random(seed)
    xs = [10.0 + rng.gauss(0, 1) for _ in range(n)]
    if spike_at is not None:
        xs[spike_at] = 30.0
    return xs


def test_scores_in_unit_interval_and_spike_ranks_first() -> None:
    det = SurpriseDetector()
    scores = [det.score_learn(x) for x in _series()]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert max(range(len(scores)), key=scores.__getitem__) == 1500


def test_level_shift_detected_early() -> None:
    xs = _series(spike_at=None)
    xs[1200:] = [x + 8.0 for x in xs[1200:]]
    det = SurpriseDetector()
    scores = [det.score_learn(x) for x in xs]
    assert max(scores[1200:1205]) > max(scores[300:1200])


def test_constant_series_is_quiet_then_change_is_loud() -> None:
    det = SurpriseDetector()
    scores = [det.score_learn(5.0) for _ in range(500)]
    assert max(scores) == 0.0
    assert det.score_learn(6.0) > 0.99


def test_causal_prefix_scores_do_not_change() -> None:
    xs = _series()
    full = SurpriseDetector()
    a = [full.score_learn(x) for x in xs]
    cut = SurpriseDetector()
    b = [cut.score_learn(x) for x in xs[:1000]]
    assert a[:1000] == b


def _sample(i: int, value: float, service: str = "api", metric: str = "p99") -> MetricSample:
    return MetricSample(
        service=service, metric=metric, value=value, timestamp=T0 + timedelta(minutes=i)
    )


def test_bank_raises_one_alert_per_episode_with_deterministic_id() -> None:
    xs = _series(spike_at=None)
    xs[1500:1510] = [40.0] * 10
    bank = DetectorBank()
    alerts = []
    for i, x in enumerate(xs):
        score, alert = bank.observe(_sample(i, x))
        assert 0.0 <= score <= 1.0
        if alert is not None:
            alerts.append((i, alert))
    at_1500 = [a for i, a in alerts if 1500 <= i < 1510]
    assert len(at_1500) == 1
    alert = at_1500[0]
    assert alert.source == ANOMALY_SOURCE and alert.service == "api"
    assert alert.labels["metric"] == "p99"
    bank2 = DetectorBank()
    ids2 = [a.id for i, x in enumerate(xs) if (a := bank2.observe(_sample(i, x))[1])]
    assert ids2 == [a.id for _, a in alerts]


def test_bank_is_bounded_lru() -> None:
    bank = DetectorBank(DetectorSettings(max_series=3))
    for k in range(10):
        bank.observe(_sample(0, 1.0, metric=f"m{k}"))
    assert len(bank) == 3 and bank.evicted == 7


def test_bank_snapshot_restore_scores_identically() -> None:
    xs = _series()
    bank = DetectorBank()
    for i, x in enumerate(xs[:1000]):
        bank.observe(_sample(i, x))
        bank.observe(_sample(i, x * 2, service="db"))
    restored = DetectorBank.restore(bank.snapshot())
    for i, x in enumerate(xs[1000:], start=1000):
        assert bank.observe(_sample(i, x)) == restored.observe(_sample(i, x))
    with pytest.raises(ValueError):
        DetectorBank.restore(b"\x80\x05N.")
    # a changed threshold applies to the restored series too (it starts their rest periods)
    stricter = DetectorBank.restore(bank.snapshot(), DetectorSettings(threshold=0.9))
    assert {s.detector.alarm_level for s in stricter._series.values()} == {0.9}


def test_run_detect_roundtrip(tmp_path: Path) -> None:
    src = tmp_path / "s.csv"
    xs = _series(300, spike_at=250)
    src.write_text(
        "timestamp,value\n"
        + "".join(f"2024-01-01 00:{i // 60:02d}:{i % 60:02d},{x}\n" for i, x in enumerate(xs))
    )
    out = tmp_path / "o.csv"
    assert run_detect(src, out, progress=False) == 300
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score" and len(lines) == 301
    scores = [float(line.split(",")[2]) for line in lines[1:]]
    assert max(range(300), key=scores.__getitem__) == 250


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "empty"),
        ("time,val\n1,2\n", "header"),
        ("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,abc\n", "line 3"),
        ("timestamp,value\n2024-01-01 00:00:00,1\nyesterday,2\n", "line 3: timestamp"),
    ],
)
def test_run_detect_bad_input(tmp_path: Path, content: str, needle: str) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(content)
    with pytest.raises(DetectInputError, match=needle):
        run_detect(src, tmp_path / "o.csv", progress=False)
    assert not (tmp_path / "o.csv").exists()


def test_run_detect_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DetectInputError, match="does not exist"):
        run_detect(tmp_path / "nope.csv", tmp_path / "o.csv", progress=False)


def _daily(days: int = 7, step_s: float = 300.0, seed: int = 3) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    ts = [T0.timestamp() + i * step_s for i in range(int(days * 86400 / step_s))]
    xs = [50.0 + 40.0 * math.sin(2 * math.pi * (t % 86400) / 86400) + rng.gauss(0, 2) for t in ts]
    return ts, xs


def test_time_of_day_profile_catches_a_value_wrong_for_the_hour() -> None:
    ts, xs = _daily()
    at = len(xs) - 100  # a day-6 afternoon sample at the trough (normal at 06:00, not now)
    i = at
    while abs(xs[i] - 50.0) < 35.0:  # move to a sample near a peak or trough
        i += 1
    xs[i] = 100.0 - xs[i]  # mirror it: inside the series' range, wrong for the time of day
    timed, untimed = SurpriseDetector(), SurpriseDetector()
    s_t = [timed.score_learn(x, t=t) for x, t in zip(xs, ts, strict=True)]
    s_v = [untimed.score_learn(x) for x in xs]
    assert s_t[i] > 0.9 and s_t[i] == max(s_t[len(xs) // 2 :])
    assert s_v[i] < s_t[i]


def test_timed_detector_pickles_mid_stream() -> None:
    import pickle

    ts, xs = _daily(days=3)
    det = SurpriseDetector()
    for x, t in zip(xs[:500], ts[:500], strict=True):
        det.score_learn(x, t=t)
    copy = pickle.loads(pickle.dumps(det))
    for x, t in zip(xs[500:], ts[500:], strict=True):
        assert det.score_learn(x, t=t) == copy.score_learn(x, t=t)


def test_rest_period_one_alarm_per_event_then_rearms() -> None:
    xs = _series(3000, spike_at=None)
    xs[1500:1505] = [20.0, 25.0, 30.0, 35.0, 40.0]  # a rising event: each row beats the last
    xs[2500] = 60.0  # a later, separate event (after the rest)
    det = SurpriseDetector()
    scores = [det.score_learn(x) for x in xs]
    alarms = [i for i, s in enumerate(scores) if s >= 0.8]
    assert alarms == [1500, 2500]
    assert max(scores[1501 : 1500 + 1 + det.rest]) == 0.0
    no_rest = SurpriseDetector(rest=0)
    assert sum(no_rest.score_learn(x) >= 0.8 for x in xs[:2000]) > 1


def test_rest_period_survives_pickling_and_score_one_is_pure() -> None:
    import pickle

    xs = _series(2000, spike_at=1500)
    det = SurpriseDetector()
    for x in xs[:1510]:  # mid-rest
        det.score_learn(x)
    twin = pickle.loads(pickle.dumps(det))
    assert det.score_one({"value": 50.0}) == 0.0  # silenced, and score_one does not learn
    for x in xs[1510:]:
        assert det.score_learn(x) == twin.score_learn(x)


def test_bank_detectors_rest_at_the_alert_threshold() -> None:
    bank = DetectorBank(DetectorSettings(threshold=0.9))
    assert bank.new_detector().alarm_level == 0.9
    bank = DetectorBank(DetectorSettings(threshold=0.9, detector_params={"alarm_level": 0.7}))
    assert bank.new_detector().alarm_level == 0.7


def test_detector_pickled_before_the_rest_period_restores_as_it_scored() -> None:
    import pickle

    xs = _series(1600, spike_at=1500)
    old = SurpriseDetector(rest=0)
    for x in xs[:1000]:
        old.score_learn(x)
    del old.__dict__["rest"], old.__dict__["alarm_level"]  # as an older checkpoint
    restored = pickle.loads(pickle.dumps(old))
    for st in restored._states.values():  # its feature state had no such slot either
        st.__setstate__({k: v for k, v in st.__getstate__().items() if k != "rest_until"})
        assert st.rest_until == 0
    twin = SurpriseDetector(rest=0)
    for x in xs[:1000]:
        twin.score_learn(x)
    assert [restored.score_learn(x) for x in xs[1000:]] == [twin.score_learn(x) for x in xs[1000:]]


def _daily_steps(days: int = 10, seed: int = 5) -> tuple[list[float], list[float]]:
    """5-min samples of a series that steps up at 08:00 and down at 20:00 every day."""
    rng = random.Random(seed)
    ts = [T0.timestamp() + 300.0 * i for i in range(days * 288)]
    xs = [(30.0 if 8 <= (t % 86400) / 3600 < 20 else 10.0) + rng.gauss(0, 1) for t in ts]
    return ts, xs


def test_daily_step_the_profile_predicts_is_not_a_surprise() -> None:
    ts, xs = _daily_steps()
    spike = len(xs) - 150  # a real anomaly late in the series (evening, low phase)
    xs[spike] += 15.0
    scored = {}
    for season_change in (True, False):
        det = SurpriseDetector(season_change=season_change)
        scored[season_change] = [det.score_learn(x, t=t) for x, t in zip(xs, ts, strict=True)]
    late = len(xs) // 2  # the profile is in use well before day 5
    steps = [
        i
        for i in range(late, len(xs))
        if abs(xs[i] - xs[i - 1]) > 12.0 and i not in (spike, spike + 1)
    ]
    assert steps and any(scored[False][i] >= 0.8 for i in steps)  # daily steps alarm ...
    assert all(scored[True][i] < 0.8 for i in steps)  # ... unless the profile predicts them
    assert scored[True][spike] >= 0.8  # a value wrong for the hour still alarms
    alarms = [i for i in range(late, len(xs)) if scored[True][i] >= 0.8]
    assert alarms == [spike]


def test_detector_pickled_before_the_seasonal_change_restores_as_it_scored() -> None:
    import pickle

    ts, xs = _daily_steps(days=6)
    old = SurpriseDetector(season_change=False)
    for x, t in zip(xs[:1000], ts[:1000], strict=True):
        old.score_learn(x, t=t)
    del old.__dict__["season_change"]  # as a checkpoint taken before the option existed
    restored = pickle.loads(pickle.dumps(old))
    for st in restored._states.values():  # its feature state had no such slot either
        st.__setstate__({k: v for k, v in st.__getstate__().items() if k != "prev_bucket"})
        assert st.prev_bucket == -1
    assert restored.season_change is False
    twin = SurpriseDetector(season_change=False)
    for x, t in zip(xs[:1000], ts[:1000], strict=True):
        twin.score_learn(x, t=t)
    rest = list(zip(xs[1000:], ts[1000:], strict=True))
    assert [restored.score_learn(x, t=t) for x, t in rest] == [
        twin.score_learn(x, t=t) for x, t in rest
    ]


def _ad_prices(n: int = 1500, seed: int = 3) -> tuple[list[float], list[float]]:
    """Hourly prices: log-normal noise, ~2 % of hours empty (price 0)."""
    rng = random.Random(seed)
    ts = [T0.timestamp() + 3600.0 * i for i in range(n)]
    xs = [0.0 if rng.random() < 0.02 else math.exp(rng.gauss(0.0, 0.2)) for _ in ts]
    return ts, xs


def test_calibration_ordinary_outliers_do_not_alarm_a_spike_does() -> None:
    ts, xs = _ad_prices()
    spike = 1200
    xs[spike] = 8.0
    alarms = {}
    for q in (0.0, 0.99):
        det = SurpriseDetector(calibrate_q=q)
        scores = [det.score_learn(x, t=t) for x, t in zip(xs, ts, strict=True)]
        alarms[q] = [i for i in range(300, len(xs)) if scores[i] >= 0.8]
    assert any(xs[i] == 0.0 for i in alarms[0.0])  # empty hours alarm (and start rests) ...
    assert alarms[0.99] == [spike]  # ... unless the series' own surprises say they are usual


def _weekly(weeks: int = 4, seed: int = 9) -> tuple[list[float], list[float]]:
    """5-min traffic: two rush hours on weekdays, a flat weekend."""
    rng = random.Random(seed)
    ts = [T0.timestamp() + 300.0 * i for i in range(weeks * 7 * 288)]
    xs = []
    for t in ts:
        h = (t % 86400) / 3600
        weekday = datetime.fromtimestamp(t, UTC).weekday() < 5
        rush = math.exp(-0.5 * ((h - 8) / 1.0) ** 2) + math.exp(-0.5 * ((h - 17.5) / 1.3) ** 2)
        xs.append(10.0 + (30.0 * rush if weekday else 0.0) + rng.gauss(0, 1))
    return ts, xs


def test_weekly_profile_learns_the_weekend() -> None:
    ts, xs = _weekly()
    weekend = (3 * 7 + 5) * 288  # the last weekend
    alarms = {}
    for gate in (0.0, 0.8):
        det = SurpriseDetector(weekly_gate=gate, window=0, rest=0)  # every row's own score
        scores = [det.score_learn(x, t=t) for x, t in zip(xs, ts, strict=True)]
        alarms[gate] = [i for i in range(weekend, len(xs)) if scores[i] >= 0.8]
    assert len(alarms[0.0]) > 10  # a weekend is wrong for the daily profile ...
    assert alarms[0.8] == []  # ... and normal for the weekly one


def test_counts_are_scored_on_the_square_root_scale() -> None:
    import numpy as np

    rng = np.random.default_rng(4)
    counts = rng.poisson(5.0, 3000).astype(float).tolist()
    counts[2500] = 40.0
    det = SurpriseDetector(counts=True)
    scores = [det.score_learn(x) for x in counts]
    assert det._states["value"].sqrt
    assert max(range(len(scores)), key=scores.__getitem__) == 2500
    floats = SurpriseDetector(counts=True)
    for x in _series(100, spike_at=None):
        floats.score_learn(x)
    big = SurpriseDetector(counts=True)  # integer bytes, far more dispersed than counts
    for x in rng.integers(0, 10**8, 100):
        big.score_learn(float(x))
    assert not floats._states["value"].sqrt and not big._states["value"].sqrt


def test_detector_pickled_before_calibration_weekly_and_counts_restores_as_it_scored() -> None:
    import pickle

    ts, xs = _weekly(weeks=2)
    old = SurpriseDetector(calibrate_q=0.0, weekly_gate=0.0, counts=False)
    for x, t in zip(xs[:2000], ts[:2000], strict=True):
        old.score_learn(x, t=t)
    for k in ("calibrate_q", "weekly_gate", "counts", "_z_ref"):
        del old.__dict__[k]  # as a checkpoint taken before the options existed
    restored = pickle.loads(pickle.dumps(old))
    new_slots = ("head", "sqrt", "weekly", "zq_level", "zq_change")
    for st in restored._states.values():  # its feature state had no such slots either
        st.__setstate__({k: v for k, v in st.__getstate__().items() if k not in new_slots})
    twin = SurpriseDetector(calibrate_q=0.0, weekly_gate=0.0, counts=False)
    for x, t in zip(xs[:2000], ts[:2000], strict=True):
        twin.score_learn(x, t=t)
    rest = list(zip(xs[2000:], ts[2000:], strict=True))
    assert [restored.score_learn(x, t=t) for x, t in rest] == [
        twin.score_learn(x, t=t) for x, t in rest
    ]


def test_rest_and_window_last_a_time_not_a_number_of_rows() -> None:
    rng = random.Random(2)
    ts = [T0.timestamp() + 3600.0 * i for i in range(1500)]  # hourly
    xs = [10.0 + rng.gauss(0, 1) for _ in ts]
    xs[1000], xs[1060] = 30.0, 29.0  # two events 60 h apart; the second is a bit smaller
    alarms = {}
    for row_s in (0.0, 300.0):
        det = SurpriseDetector(row_s=row_s)
        scores = [det.score_learn(x, t=t) for x, t in zip(xs, ts, strict=True)]
        alarms[row_s] = [i for i in range(500, len(xs)) if scores[i] >= 0.8]
    assert alarms[0.0] == [1000]  # 150 rows of rest (6 days) hide the second event
    assert alarms[300.0] == [1000, 1060]  # 12.5 h of rest, a 25 h window
