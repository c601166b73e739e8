"""Online metric anomaly detectors (River estimators) and a bounded per-(service, metric) bank.

:class:`SurpriseDetector` is a River :class:`~river.base.AnomalyDetector`. For every numeric
feature it keeps, in O(1) time per sample and O(window) memory:

1. **Level surprise**: the distance of the value to a slow exponentially-weighted mean, in
   slow exponentially-weighted standard deviations (a long horizon, ~1/``slow_alpha`` rows).
2. **Change surprise**: the error of a fast one-step prediction (a fast EW mean), in units of
   the long-run spread of that error: catches spikes, drops and sudden level or slope changes
   even on series whose level drifts.
3. The raw score is ``z / (1 + z)`` for ``z`` the larger surprise.
4. **Onset emphasis**: a score is reported only when it beats every score of the previous
   ``window`` rows (otherwise it is multiplied by ``damp``): one anomaly episode gives one
   early alarm instead of a run of them, so a single global threshold is not spent on
   repeated alarms of an already-reported episode.
   **Rest period**: a reported score at or above ``alarm_level`` (the alerting threshold)
   silences the feature for the next ``rest`` rows (it keeps learning): the rising first
   rows of an event, and its aftershocks, do not raise alarm after alarm.
5. **Robust learning**: samples whose raw score is above ``protect_above`` update the
   statistics with ``protect_weight`` times the usual weight, so an anomaly is not quickly
   learned as normal (a lasting level shift is still absorbed, more slowly).
6. **Time of day** (only when samples carry a time, ``score_learn(value, t=epoch)``): a
   per-feature EW mean per time-of-day bucket (``season_buckets`` per day). Once the
   residual from that daily profile has less than ``season_gate`` of the series' variance
   (the series has a daily cycle), the level surprise is measured against the daily profile
   instead of the flat mean: a value normal for the day but wrong for the hour is caught.
   With ``season_change`` the change surprise is also measured against the daily profile
   once it is in use: a jump the profile predicts (its step from the previous sample's
   time-of-day bucket to this one's) is not a surprise, so a series that rises every
   morning does not alarm every morning. The smaller of the two change errors counts, so
   this only lowers scores, and only on series that pass the gate.
7. **Time of week** (``weekly_gate``): a second profile per time-of-week bucket replaces the
   daily one once its residual variance is below ``weekly_gate`` of the daily one's: the
   series has a weekly cycle (weekends differ), found from the data, not assumed.
8. **Calibration** (``calibrate_q``): both surprises are divided by the feature's own running
   ``calibrate_q`` quantile of them (River's P² estimator) when it exceeds that quantile of a
   Gaussian. One global threshold then means the same rarity on every series: a bursty or
   heavy-tailed series (counts, prices with empty hours) needs a larger surprise to alarm,
   and its ordinary outliers do not start rest periods that hide real anomalies.
9. **Count scale** (``counts``): a series whose first ``warmup`` samples look like event
   counts (non-negative integers, dispersion index at most ``MAX_DISPERSION``) is learned and
   scored on the square-root scale, where count noise has one spread at every level.
10. **Rest and window in time** (``row_s``): for timed samples ``rest`` and ``window`` count
   rows of ``row_s`` seconds, so an event is one alarm whatever the sampling interval.

It is deterministic (no randomness), picklable, and ``score_one`` never mutates state.
Measured on NAB (``make bench-nab``; results in ``docs/models.md``).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import math
import pickle
from array import array
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from river import base, stats

from pipeline.domain.schemas import Alert, AlertStatus, MetricSample, Severity
from pipeline.domain.validation import check_unit_interval

ANOMALY_SOURCE = "stormwatch-anomaly"
ANOMALY_ALERT_NAME = "MetricAnomaly"
SNAPSHOT_VERSION = 1
WEEK = 7 * 86400.0
MAX_DISPERSION = 100.0


class _Profile:
    """An EW mean per bucket of a period, and the EW variance of the residual from it."""

    __slots__ = ("counts", "means", "prev", "res_n", "res_var")

    def __init__(self, buckets: int) -> None:
        self.means = array("d", bytes(8 * buckets))  # compact: a bank holds many of these
        self.counts = array("q", bytes(8 * buckets))
        self.res_var = 0.0
        self.res_n = 0
        self.prev = -1  # bucket of the last learned sample

    def copy(self) -> _Profile:
        new = _Profile(0)
        new.means, new.counts = array("d", self.means), array("q", self.counts)
        new.res_var, new.res_n, new.prev = self.res_var, self.res_n, self.prev
        return new

    def learn(self, bucket: int, x: float, alpha: float, var_alpha: float, w: float) -> None:
        """Learn ``x`` in ``bucket`` (weight ``w``); the residual variance once it has a mean."""
        k = self.counts[bucket]
        if k > 0:
            r = x - self.means[bucket]
            b = max(var_alpha, 1.0 / (self.res_n + 1)) * w
            self.res_var = (1.0 - b) * (self.res_var + b * r * r)
            self.res_n += 1
        self.means[bucket] += max(alpha, 1.0 / (k + 1)) * w * (x - self.means[bucket])
        self.counts[bucket] = k + 1
        self.prev = bucket


class _FeatureState:
    """Per-feature sufficient statistics of :class:`SurpriseDetector` (plain, picklable)."""

    __slots__ = (
        "fast_mean",
        "head",
        "n",
        "prev_bucket",
        "recent",
        "res_var",
        "rest_until",
        "season",
        "season_n",
        "slow_mean",
        "slow_var",
        "sqrt",
        "sres_n",
        "sres_var",
        "weekly",
        "zq_change",
        "zq_level",
    )

    def __init__(self) -> None:
        self.n = 0
        self.slow_mean = 0.0
        self.slow_var = 0.0
        self.fast_mean = 0.0
        self.res_var = 0.0
        # time-of-day profile (allocated on the first timed sample)
        self.season: list[float] | None = None
        self.season_n: list[int] | None = None
        self.sres_var = 0.0  # EW variance of the residual from the daily profile
        self.sres_n = 0
        self.prev_bucket = -1  # time-of-day bucket of the last learned timed sample
        self.weekly: _Profile | None = None  # time-of-week profile (if enabled)
        # (clock, score) pairs with decreasing scores: the running max of the last rows
        self.recent: deque[tuple[float, float]] = deque()
        self.rest_until: float = 0  # clocks before this report 0 (rest period after an alarm)
        # the first samples (value, time) until the scale is chosen, then None
        self.head: list[tuple[float, float | None]] | None = []
        self.sqrt = False  # integer counts: learned and scored on the square-root scale
        # running high quantiles of this feature's own level and change surprises
        self.zq_level: stats.Quantile | None = None
        self.zq_change: stats.Quantile | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]  # defaults for slots older snapshots lack
        for k, v in state.items():
            setattr(self, k, v)

    def copy(self) -> _FeatureState:
        new = _FeatureState()
        new.__setstate__(self.__getstate__())
        new.recent = deque(self.recent)
        if self.head is not None:
            new.head = list(self.head)
        if self.season is not None and self.season_n is not None:
            new.season = list(self.season)
            new.season_n = list(self.season_n)
        if self.weekly is not None:
            new.weekly = self.weekly.copy()
        if self.zq_level is not None:
            new.zq_level = copy.deepcopy(self.zq_level)
            new.zq_change = copy.deepcopy(self.zq_change)
        return new


class SurpriseDetector(base.AnomalyDetector):
    """Multi-horizon surprise with onset emphasis, univariate per feature (max over features).

    Parameters
    ----------
    slow_alpha
        Weight of a new sample in the slow (long-horizon) mean and variances (~1/horizon).
    fast_alpha
        Weight of a new sample in the fast mean used as one-step prediction.
    window
        Rows over which a score must be a new maximum to be reported undamped (0: off).
    damp
        Factor applied to scores that do not beat the last ``window`` rows.
    rest
        Rows silenced after a reported score reaches ``alarm_level`` (0: off); keep it shorter
        than ``window``, so the alarm's own score still guards the rows after the rest.
    alarm_level
        Reported score that starts a rest period: the threshold at which alarms are raised
        (``DetectorBank`` passes its ``threshold``).
    warmup
        Samples seen before any non-zero score.
    protect_above
        Raw score above which a sample is learned with ``protect_weight`` times the weight.
    protect_weight
        Relative learning weight of samples with a raw score above ``protect_above``.
    season_buckets
        Time-of-day buckets of the daily profile (0: off); used only for timed samples.
    season_alpha
        Weight of a new sample in its bucket's mean (after the first few days).
    season_gate
        The daily profile replaces the flat mean once its residual variance is below this
        share of the series' variance.
    season_change
        Once the daily profile is in use, a change the profile predicts (its step between
        the time-of-day buckets of the previous and the current sample) is not a surprise.
    calibrate_q
        Surprises are divided by the feature's own running ``calibrate_q`` quantile of them
        (River's P² estimate), in units of that quantile of a Gaussian (0: off): a series
        whose normal surprises are large (bursty, heavy-tailed) needs a larger one to alarm.
    weekly_gate
        A time-of-week profile (7 x ``season_buckets``) replaces the daily one once its
        residual variance is below this share of the daily one's (0: off).
    counts
        Series whose first ``warmup`` samples look like event counts (non-negative integers,
        variance at most ``MAX_DISPERSION`` times the mean) are learned and scored on the
        square-root scale, where count noise has a spread independent of the level.
    row_s
        For timed samples, ``rest`` and ``window`` count rows of this many seconds (the rest
        period lasts ``rest * row_s`` seconds whatever the sampling interval; 0: rows).
    """

    # detectors pickled before the rest period existed restore without it (as they scored)
    rest: int = 0
    alarm_level: float = 0.8
    # ... and those pickled before the seasonal change existed restore without it
    season_change: bool = False
    # ... and those pickled before calibration, the weekly profile and the count scale
    calibrate_q: float = 0.0
    weekly_gate: float = 0.0
    counts: bool = False
    _z_ref: float = 0.0
    row_s: float = 0.0

    def __init__(
        self,
        slow_alpha: float = 0.002,
        fast_alpha: float = 0.6,
        window: int = 300,
        damp: float = 0.0,
        rest: int = 150,
        alarm_level: float = 0.8,
        warmup: int = 20,
        protect_above: float = 0.9,
        protect_weight: float = 0.1,
        season_buckets: int = 48,
        season_alpha: float = 0.3,
        season_gate: float = 0.5,
        season_change: bool = True,
        calibrate_q: float = 0.0,
        weekly_gate: float = 0.8,
        counts: bool = True,
        row_s: float = 300.0,
    ) -> None:
        self.slow_alpha = slow_alpha
        self.fast_alpha = fast_alpha
        self.window = window
        self.damp = damp
        self.rest = rest
        self.alarm_level = alarm_level
        self.warmup = warmup
        self.protect_above = protect_above
        self.protect_weight = protect_weight
        self.season_buckets = season_buckets
        self.season_alpha = season_alpha
        self.season_gate = season_gate
        self.season_change = season_change
        self.calibrate_q = calibrate_q
        self.weekly_gate = weekly_gate
        self.counts = counts
        self.row_s = row_s
        self._z_ref = NormalDist().inv_cdf(0.5 + calibrate_q / 2.0) if calibrate_q > 0 else 0.0
        self._states: dict[Any, _FeatureState] = {}

    # -- River API -------------------------------------------------------------------------
    def learn_one(self, x: dict[Any, Any]) -> None:
        for k, v in x.items():
            if _is_number(v):
                st = self._states.get(k)
                if st is None:
                    st = self._states[k] = _FeatureState()
                self._step(st, float(v), learn=True)

    def score_one(self, x: dict[Any, Any]) -> float:
        best = 0.0
        for k, v in x.items():
            if _is_number(v):
                st = self._states.get(k)
                if st is None:
                    continue
                s = self._step(st.copy(), float(v), learn=False)
                best = max(best, s)
        return best

    # -- fast path ---------------------------------------------------------------------------
    def score_learn(self, value: float, key: Any = "value", t: float | None = None) -> float:
        """Score ``value`` from earlier samples, then learn it (one pass, for streams).

        ``t``: the sample's time (epoch seconds), which enables the time-of-day profile.
        """
        st = self._states.get(key)
        if st is None:
            st = self._states[key] = _FeatureState()
        return self._step(st, float(value), learn=True, t=t)

    @property
    def n_seen(self) -> int:
        return max((st.n for st in self._states.values()), default=0)

    # -- core --------------------------------------------------------------------------------
    def _step(self, st: _FeatureState, x: float, *, learn: bool, t: float | None = None) -> float:
        head = st.head
        if self.counts and head is not None:
            if len(head) != st.n:  # restored from a detector without the count scale
                st.head = None
            elif learn and math.isfinite(x):
                head.append((x, t))
                if len(head) >= max(self.warmup, 1):
                    st.head = None
                    if _look_like_counts([v for v, _ in head]):
                        # counts: relearn the first samples on the square-root scale
                        fresh = _FeatureState()
                        fresh.head, fresh.sqrt = None, True
                        for v, tv in head:
                            self._core(fresh, math.sqrt(v), learn=True, t=tv)
                        st.__setstate__(fresh.__getstate__())
                        return 0.0
        if st.sqrt:
            x = math.copysign(math.sqrt(abs(x)), x)
        return self._core(st, x, learn=learn, t=t)

    def _core(self, st: _FeatureState, x: float, *, learn: bool, t: float | None) -> float:
        n = st.n
        if n == 0 or not math.isfinite(x):
            if learn and n == 0 and math.isfinite(x):
                st.n = 1
                st.slow_mean = x
                st.fast_mean = x
            return 0.0
        eps = 1e-9 + 1e-6 * abs(st.slow_mean)
        d = x - st.slow_mean
        z_level = abs(d) / (math.sqrt(st.slow_var) + eps)
        res = x - st.fast_mean
        z_change = abs(res) / (math.sqrt(st.res_var) + eps) if n > 1 else 0.0
        nb = self.season_buckets
        step = 0.0  # the change the daily profile predicts since the last sample (if used)
        wk: _Profile | None = None
        wi = -1
        bi = -1
        sres = 0.0
        season = st.season
        season_n = st.season_n
        if nb > 0 and t is not None and math.isfinite(t):
            if season is None or season_n is None or len(season) != nb:
                season = st.season = [0.0] * nb
                season_n = st.season_n = [0] * nb
            bi = int((t % 86400.0) * nb / 86400.0) % nb
            if season_n[bi] > 0:
                sres = x - season[bi]
                if st.sres_n > 50 and st.sres_var < self.season_gate * st.slow_var:
                    z_level = abs(sres) / (math.sqrt(st.sres_var) + eps)
                    if self.season_change and n > 1:
                        step = _profile_step(season, season_n, st.prev_bucket, bi, res)
            if self.weekly_gate > 0:
                wk = st.weekly
                if wk is None or len(wk.means) != 7 * nb:
                    wk = st.weekly = _Profile(7 * nb)
                wi = int((t % WEEK) * 7 * nb / WEEK) % (7 * nb)
                base_var = min(st.sres_var if st.sres_n > 50 else st.slow_var, st.slow_var)
                if (
                    wk.counts[wi] > 0
                    and wk.res_n > 50
                    and wk.res_var < self.weekly_gate * base_var
                    and wk.res_var < self.season_gate * st.slow_var
                ):
                    # the time-of-week profile explains the series better than the daily one
                    z_level = abs(x - wk.means[wi]) / (math.sqrt(wk.res_var) + eps)
                    if self.season_change and n > 1:
                        step = _profile_step(wk.means, wk.counts, wk.prev, wi, res)
            if step:
                z_change = abs(res - step) / (math.sqrt(st.res_var) + eps)
        cq = self.calibrate_q
        if cq > 0 and n >= self.warmup:
            if st.zq_level is None or st.zq_change is None:
                st.zq_level, st.zq_change = stats.Quantile(cq), stats.Quantile(cq)
            zl, zc = z_level, z_change
            ref = self._z_ref
            q = st.zq_level.get()
            if q is not None and q > ref:
                z_level *= ref / q
            q = st.zq_change.get()
            if q is not None and q > ref:
                z_change *= ref / q
            if learn:
                st.zq_level.update(zl)
                st.zq_change.update(zc)
        z = z_level if z_level > z_change else z_change
        raw = z / (1.0 + z) if n >= self.warmup else 0.0

        # rows, or for timed samples the time in units of row_s: rest and window last as long
        # whatever the sampling interval
        timed = self.row_s > 0 and t is not None and math.isfinite(t)
        clock: float = t / self.row_s if timed and t is not None else n
        recent = st.recent
        score = raw
        if self.window > 0:
            while recent and recent[0][0] < clock - self.window:
                recent.popleft()
            if recent and raw <= recent[0][1]:
                score = raw * self.damp
        rest = self.rest
        if rest > 0:
            if clock < st.rest_until:
                score = 0.0
            elif score >= self.alarm_level and learn:
                st.rest_until = clock + 1 + rest

        if learn:
            w = self.protect_weight if raw > self.protect_above else 1.0
            a = max(self.slow_alpha, 1.0 / (n + 1)) * w
            st.slow_mean += a * d
            st.slow_var = (1.0 - a) * (st.slow_var + a * d * d)
            if step:  # the fast prediction follows the step the profile predicted
                res -= step
                st.fast_mean += step
            st.res_var = (1.0 - a) * (st.res_var + a * res * res) if n > 1 else res * res
            st.fast_mean += self.fast_alpha * w * res
            if bi >= 0 and season is not None and season_n is not None:
                k = season_n[bi]
                if k > 0:
                    b = max(self.slow_alpha, 1.0 / (st.sres_n + 1)) * w
                    st.sres_var = (1.0 - b) * (st.sres_var + b * sres * sres)
                    st.sres_n += 1
                season[bi] += max(self.season_alpha, 1.0 / (k + 1)) * w * (x - season[bi])
                season_n[bi] = k + 1
                st.prev_bucket = bi
                if wk is not None:
                    wk.learn(wi, x, self.season_alpha, self.slow_alpha, w)
            if self.window > 0:
                while recent and recent[-1][1] <= raw:
                    recent.pop()
                recent.append((clock, raw))
            st.n = n + 1
        return score

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {}
        yield {"window": 0, "warmup": 5, "season_buckets": 24}
        yield {"rest": 0, "alarm_level": 0.5}
        yield {"season_change": False}
        yield {"calibrate_q": 0.99, "weekly_gate": 0.0, "counts": False, "row_s": 0.0}


def _profile_step(
    means: Sequence[float], counts: Sequence[int], prev: int, bucket: int, res: float
) -> float:
    """The step a profile predicts from bucket ``prev`` to ``bucket``, if it explains ``res``."""
    if 0 <= prev < len(means) and counts[prev] > 0:
        s_step = means[bucket] - means[prev]
        if abs(res - s_step) < abs(res):
            return s_step
    return 0.0


def _look_like_counts(values: list[float]) -> bool:
    """Event counts: non-negative integers, not constant, with a variance at most
    ``MAX_DISPERSION`` times their mean (1 for Poisson counts; bursty counts more)."""
    if not all(v >= 0.0 and v.is_integer() for v in values):
        return False
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    return 0.0 < var <= MAX_DISPERSION * mean


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ------------------------------------------------------------------------------------------
# Per-(service, metric) bank
# ------------------------------------------------------------------------------------------


@dataclass
class DetectorSettings:
    """Settings of the metric anomaly detectors (the worker maps its config onto these)."""

    threshold: float = 0.8  # score at which an anomaly alert is raised (NAB optimum ~0.80)
    rearm_below: float = 0.5  # score under which an episode ends (a new crossing alerts again)
    max_series: int = 10_000  # per-(service, metric) models kept (least recently used evicted)
    warning_below: float = 0.8  # anomaly alerts scoring below this are warnings, else errors
    rest: int = 150  # samples a series stays quiet after an alarm (one alarm per event)
    season_change: bool = True  # a step the series' daily profile predicts is no surprise
    #: any other SurpriseDetector parameter (from code; overrides the fields above)
    detector_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_unit_interval(self, "threshold", "rearm_below", "warning_below")
        if self.max_series < 1:
            raise ValueError(f"max_series must be >= 1 (got {self.max_series})")
        if self.rest < 0:
            raise ValueError(f"rest must be >= 0 (got {self.rest})")
        known = set(inspect.signature(SurpriseDetector.__init__).parameters) - {"self"}
        unknown = set(self.detector_params) - known
        if unknown:
            raise ValueError(
                f"detector_params has unknown keys {sorted(unknown)}; known: {sorted(known)}"
            )


class _Series:
    __slots__ = ("detector", "in_episode", "last_epoch")

    def __init__(self, detector: SurpriseDetector) -> None:
        self.detector = detector
        self.in_episode = False
        self.last_epoch = 0.0


def series_key(sample: MetricSample) -> str:
    return f"{sample.service}\x1f{sample.metric}"


class DetectorBank:
    """One :class:`SurpriseDetector` per (service, metric), at most ``max_series`` of them (LRU)."""

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DetectorSettings()
        self._series: OrderedDict[str, _Series] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._series)

    def new_detector(self) -> SurpriseDetector:
        s = self.settings
        params = {
            "alarm_level": s.threshold,
            "rest": s.rest,
            "season_change": s.season_change,
            **s.detector_params,
        }
        return SurpriseDetector(**params)

    def observe(self, sample: MetricSample) -> tuple[float, Alert | None]:
        """Score ``sample`` from its series' earlier samples, learn it, maybe raise an alert.

        An alert is raised when the score crosses ``threshold`` from below; the episode ends
        when the score falls under ``rearm_below``, so one episode gives one alert.
        """
        key = series_key(sample)
        series = self._series.get(key)
        if series is None:
            series = _Series(self.new_detector())
            self._series[key] = series
            if len(self._series) > self.settings.max_series:
                self._series.popitem(last=False)
                self.evicted += 1
        else:
            self._series.move_to_end(key)
        epoch = sample.timestamp.timestamp()
        score = series.detector.score_learn(sample.value, t=epoch)
        series.last_epoch = epoch
        alert: Alert | None = None
        s = self.settings
        if score >= s.threshold and not series.in_episode:
            series.in_episode = True
            alert = anomaly_alert(sample, score, warning_below=s.warning_below)
        elif series.in_episode and score < s.rearm_below:
            series.in_episode = False
        return score, alert

    def snapshot(self) -> bytes:
        payload = {
            "version": SNAPSHOT_VERSION,
            "series": list(self._series.items()),
            "evicted": self.evicted,
        }
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, data: bytes, settings: DetectorSettings | None = None) -> DetectorBank:
        payload = pickle.loads(data)
        if not isinstance(payload, dict) or payload.get("version") != SNAPSHOT_VERSION:
            raise ValueError("not a stormwatch detector-bank snapshot (or an unknown version)")
        bank = cls(settings)
        for key, series in payload["series"]:
            # the configured threshold starts rest periods (other parameters stay as trained)
            series.detector.alarm_level = bank.settings.threshold
            bank._series[key] = series
        while len(bank._series) > bank.settings.max_series:
            bank._series.popitem(last=False)
            bank.evicted += 1
        bank.evicted += int(payload.get("evicted", 0))
        return bank


def anomaly_alert(sample: MetricSample, score: float, *, warning_below: float = 0.8) -> Alert:
    """The alert raised for an anomalous sample; its id is a hash of series and timestamp."""
    ts = sample.timestamp
    digest = hashlib.blake2b(
        f"{sample.service}\x1f{sample.metric}\x1f{ts.isoformat()}".encode(), digest_size=10
    ).hexdigest()
    labels = dict(sample.labels)
    labels.update({"metric": sample.metric, "detector": "surprise"})
    return Alert(
        id=f"anom-{digest}",
        source=ANOMALY_SOURCE,
        service=sample.service,
        name=ANOMALY_ALERT_NAME,
        severity=Severity.warning if score < warning_below else Severity.error,
        status=AlertStatus.firing,
        timestamp=ts,
        labels=labels,
        annotations={
            "summary": f"{sample.metric} of {sample.service} is anomalous "
            f"(value {sample.value:g}, anomaly score {score:.3f})",
            "anomaly_score": f"{score:.6f}",
        },
        value=sample.value,
    )
