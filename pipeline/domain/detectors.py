"""Online metric anomaly detectors (River estimators) and a bounded per-(service, metric) bank.

:class:`SurpriseDetector` is a River :class:`~river.base.AnomalyDetector`. For every numeric
feature it keeps, in O(1) memory and time per sample:

1. **Raw surprise** of the value against several horizons: the distance to a slow
   exponentially-weighted mean in slow standard deviations (level anomalies), and the
   one-step prediction error of a fast mean in units of the slow residual spread (sudden
   changes, spikes, drops). The raw score is the largest of these, squashed to ``z/(1+z)``.
2. **Anomaly likelihood** (after Numenta's HTM anomaly likelihood): a short average of the
   raw surprise compared with the long-run distribution of raw surprise (EW mean and
   variance); the Gaussian tail probability ``Q`` of that short average gives the score
   ``min(1, -log10(Q) / likelihood_decades)``. A series whose raw surprise is always high
   (noisy) does not alarm; one whose surprise is suddenly higher than usual does, so a
   single threshold is comparable across very different series.
3. **Robust learning**: a sample whose score is above ``protect_above`` updates the
   statistics with a much smaller weight, so an anomaly is not quickly learned as normal
   (a lasting level shift is still absorbed, more slowly).
4. **Refractory period**: after an alarm, the output score is damped for a while so that one
   anomaly episode yields one early alarm rather than many.

Everything is deterministic (no randomness), picklable, and ``score_one`` never mutates state.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from river import base

from pipeline.domain.schemas import Alert, AlertStatus, MetricSample, Severity

ANOMALY_SOURCE = "stormwatch-anomaly"
ANOMALY_ALERT_NAME = "MetricAnomaly"
SNAPSHOT_VERSION = 1
_SQRT2 = math.sqrt(2.0)
_LOG10 = math.log(10.0)


class _FeatureState:
    """Per-feature sufficient statistics of :class:`SurpriseDetector` (plain, picklable)."""

    __slots__ = (
        "cooldown",
        "fast_mean",
        "n",
        "raw_mean",
        "raw_short",
        "raw_var",
        "res_var",
        "slow_mean",
        "slow_var",
    )

    def __init__(self) -> None:
        self.n = 0
        self.slow_mean = 0.0
        self.slow_var = 0.0
        self.fast_mean = 0.0
        self.res_var = 0.0
        self.raw_mean = 0.0
        self.raw_var = 0.0
        self.raw_short = 0.0
        self.cooldown = 0.0

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def copy(self) -> _FeatureState:
        new = _FeatureState()
        new.__setstate__(self.__getstate__())
        return new


class SurpriseDetector(base.AnomalyDetector):
    """Multi-horizon surprise + anomaly likelihood, univariate per feature (max over features).

    Parameters
    ----------
    slow_alpha
        Weight of a new sample in the slow (long-horizon) mean and variances (~1/horizon).
    fast_alpha
        Weight of a new sample in the fast mean used as one-step prediction.
    raw_alpha
        Weight of a new raw surprise in its long-run mean and variance.
    short_alpha
        Weight of a new raw surprise in the short average compared against the long run.
    likelihood_decades
        ``-log10`` of the tail probability that maps to a score of 1.
    warmup
        Samples seen before any non-zero score.
    protect_above
        Score above which a sample is learned with ``protect_weight`` times the usual weight.
    protect_weight
        Relative learning weight of samples scored above ``protect_above``.
    refractory
        Rows over which the output is damped after an alarm (decays linearly).
    alarm_level
        Score at which the refractory period starts.
    """

    def __init__(
        self,
        slow_alpha: float = 0.002,
        fast_alpha: float = 0.3,
        raw_alpha: float = 0.002,
        short_alpha: float = 0.3,
        likelihood_decades: float = 12.0,
        warmup: int = 50,
        protect_above: float = 0.5,
        protect_weight: float = 0.1,
        refractory: int = 0,
        alarm_level: float = 0.5,
    ) -> None:
        self.slow_alpha = slow_alpha
        self.fast_alpha = fast_alpha
        self.raw_alpha = raw_alpha
        self.short_alpha = short_alpha
        self.likelihood_decades = likelihood_decades
        self.warmup = warmup
        self.protect_above = protect_above
        self.protect_weight = protect_weight
        self.refractory = refractory
        self.alarm_level = alarm_level
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
    def score_learn(self, value: float, key: Any = "value") -> float:
        """Score ``value`` from earlier samples, then learn it (one pass, for streams)."""
        st = self._states.get(key)
        if st is None:
            st = self._states[key] = _FeatureState()
        return self._step(st, float(value), learn=True)

    @property
    def n_seen(self) -> int:
        return max((st.n for st in self._states.values()), default=0)

    # -- core --------------------------------------------------------------------------------
    def _step(self, st: _FeatureState, x: float, *, learn: bool) -> float:
        n = st.n
        if n == 0:
            if learn:
                st.n = 1
                st.slow_mean = x
                st.fast_mean = x
            return 0.0
        if not math.isfinite(x):
            return 0.0
        eps = 1e-9 + 1e-6 * abs(st.slow_mean)
        z_level = abs(x - st.slow_mean) / (math.sqrt(st.slow_var) + eps)
        res = x - st.fast_mean
        z_change = abs(res) / (math.sqrt(st.res_var) + eps)
        z = z_level if z_level > z_change else z_change
        raw = z / (1.0 + z)

        raw_short = st.raw_short + self.short_alpha * (raw - st.raw_short)
        score = 0.0
        if n >= self.warmup:
            sd = math.sqrt(st.raw_var) + 1e-6
            u = (raw_short - st.raw_mean) / sd
            q = 0.5 * math.erfc(u / _SQRT2)
            score = 1.0 if q <= 0.0 else min(1.0, -math.log(q) / _LOG10 / self.likelihood_decades)
            if st.cooldown > 0.0 and self.refractory > 0:
                score *= 1.0 - st.cooldown / self.refractory

        if learn:
            w = self.protect_weight if score > self.protect_above else 1.0
            a = max(self.slow_alpha, 1.0 / (n + 1)) * w
            d = x - st.slow_mean
            st.slow_mean += a * d
            st.slow_var = (1.0 - a) * (st.slow_var + a * d * d)
            ar = max(self.slow_alpha, 1.0 / (n + 1)) * w
            st.res_var = (1.0 - ar) * (st.res_var + ar * res * res) if n > 1 else res * res
            st.fast_mean += self.fast_alpha * w * res if w < 1.0 else self.fast_alpha * res
            ra = max(self.raw_alpha, 1.0 / (n + 1))
            dr = raw - st.raw_mean
            st.raw_mean += ra * dr
            st.raw_var = (1.0 - ra) * (st.raw_var + ra * dr * dr)
            st.raw_short = raw_short
            if st.cooldown > 0.0:
                st.cooldown -= 1.0
            if score >= self.alarm_level and self.refractory > 0 and st.cooldown <= 0.0:
                st.cooldown = float(self.refractory)
            st.n = n + 1
        return score

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {}
        yield {"refractory": 20, "warmup": 5}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ------------------------------------------------------------------------------------------
# Per-(service, metric) bank
# ------------------------------------------------------------------------------------------


@dataclass
class DetectorSettings:
    """Settings of the metric anomaly detectors (the worker maps its config onto these)."""

    threshold: float = 0.5  # score at which an anomaly alert is raised
    rearm_below: float = 0.2  # score under which an episode ends (a new crossing alerts again)
    max_series: int = 10_000  # per-(service, metric) models kept (least recently used evicted)
    warning_below: float = 0.8  # anomaly alerts scoring below this are warnings, else errors
    detector_params: dict[str, Any] = field(default_factory=dict)


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
        return SurpriseDetector(**self.settings.detector_params)

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
        score = series.detector.score_learn(sample.value)
        series.last_epoch = sample.timestamp.timestamp()
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
