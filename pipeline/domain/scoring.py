"""Alert scoring: novelty (unsupervised) and actionability (learned from feedback), and the
incident priority / page decision built from them.

* **Novelty** in [0, 1]: how unusual this alert is for its service *now*. It blends four
  online, decayed statistics: rarity of the (service, alert name) pair, a burst of the
  service's alert rate against its long-run rate, rarity of the hour of day for the service,
  and the share of currently active alert kinds that were never seen together with this one.
  Every scored alert updates these statistics (``score`` is the streaming step).
* **Actionability** in [0, 1]: ``P(this alert belongs to an incident that needs a human)``
  from a River logistic regression over weighted one-hot features (service/name kind 1.0,
  service and name 0.5, severity and hour-of-day 0.2). It starts biased to "page" (a fixed
  prior intercept) and learns from every verdict at once (:meth:`AlertScorer.learn`, see
  :mod:`pipeline.domain.learning`); a verdict on one kind of alert barely moves unrelated kinds.
* **Incident priority** = ``0.6 max actionability + 0.25 max novelty + 0.15 severity``;
  an incident whose best actionability is under ``page_threshold`` is still published but
  marked ``page = False``.

State is bounded: per-service, per-kind and pair statistics and the alert-feature cache are
LRU maps with configured sizes.
"""

from __future__ import annotations

import copy
import math
import pickle
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from river import linear_model, optim

from pipeline.domain.learning import ModelUpdate, actionability_label, feedback_kind
from pipeline.domain.schemas import (
    SEVERITY_RANK,
    Alert,
    AlertRef,
    AlertStatus,
    Feedback,
    Incident,
    Severity,
)
from pipeline.domain.validation import check_non_negative, check_unit_interval

SNAPSHOT_VERSION = 2
ACTIONABILITY_MODEL = "actionability"
INCIDENT_MODEL = "incident-actionability"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(OrderedDict[K, V], Generic[K, V]):
    """An ordered dict that keeps at most ``maxsize`` most recently used entries."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def touch(self, key: K, default: V) -> V:
        """Return the entry for ``key`` (inserting ``default``), marking it most recent."""
        if key in self:
            self.move_to_end(key)
            return self[key]
        self[key] = default
        if len(self) > self.maxsize:
            self.popitem(last=False)
        return default

    def __reduce__(self) -> Any:
        return (_make_lru, (self.maxsize, list(self.items())))


class PairMemory:
    """Which pairs of alert kinds were seen together (two generations of sets: O(1) add and
    lookup, no recency bookkeeping per pair).

    At least the ``maxsize // 2`` most recently added distinct pairs are remembered, and at
    most ``maxsize`` plus the pairs among the kinds still recent when a generation starts
    (they are carried over, so two recent kinds never lose their pair).
    """

    __slots__ = ("current", "maxsize", "previous")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.current: set[tuple[str, str]] = set()
        self.previous: set[tuple[str, str]] = set()

    def __contains__(self, pair: object) -> bool:
        return pair in self.current or pair in self.previous

    def __len__(self) -> int:
        return len(self.current | self.previous)

    def rotate_if_full(self, recent: Iterable[str] = ()) -> None:
        """Start a new generation once the current one holds half the capacity; the pairs
        among the ``recent`` kinds (observation order) start it."""
        if len(self.current) < self.maxsize // 2:
            return
        self.previous = self.current
        self.current = cur = set()
        kinds = list(recent)
        for i, a in enumerate(kinds):
            for b in kinds[i + 1 :]:
                if a != b:
                    cur.add((a, b) if a < b else (b, a))

    def __getstate__(self) -> tuple[int, set[tuple[str, str]], set[tuple[str, str]]]:
        return (self.maxsize, self.current, self.previous)

    def __setstate__(self, state: tuple[int, set[tuple[str, str]], set[tuple[str, str]]]) -> None:
        self.maxsize, self.current, self.previous = state


def _make_lru(maxsize: int, items: list[tuple[Any, Any]]) -> LRU[Any, Any]:
    lru: LRU[Any, Any] = LRU(maxsize)
    for k, v in items:
        lru[k] = v
    return lru


@dataclass
class ScoringSettings:
    """Settings of alert scoring (the worker maps its config onto these)."""

    page_threshold: float = 0.5  # incidents whose best actionability is below: page = False
    learning_rate: float = 0.3  # SGD step of the actionability classifier
    prior_logit: float = 1.5  # initial bias: sigmoid(1.5) = 0.82 -> page until taught otherwise
    l2: float = 0.0
    short_tau_s: float = 3600.0  # horizon of the "current" alert rate
    long_tau_s: float = 7 * 86400.0  # horizon of long-run statistics
    cooccurrence_window_s: float = 900.0  # alerts this recent count as co-occurring
    max_services: int = 10_000
    max_kinds: int = 50_000
    max_pairs: int = 200_000
    max_recent: int = 64  # distinct recent alert kinds kept for co-occurrence
    # incident-level model: pages of incidents it rates below pause_threshold are held back
    # until the incident has been open pause_s (transient incidents resolve meanwhile)
    incident_learning: bool = True
    incident_learning_rate: float = 0.3
    pause_threshold: float = 0.7
    pause_s: float = 300.0
    max_incidents: int = 20_000  # incidents whose decision-time features are kept for learning
    #: ... and for how long after their last page decision (event time); a later verdict
    #: learns from the incident as it is then
    decision_ttl_s: float = 86_400.0

    def __post_init__(self) -> None:
        check_non_negative(self, skip=("prior_logit",))
        check_unit_interval(self, "page_threshold", "pause_threshold")
        for name in ("short_tau_s", "long_tau_s", "max_pairs", "max_recent"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0 (got {getattr(self, name)})")


@dataclass
class AlertScore:
    novelty: float
    actionability: float


class _Decayed:
    """An exponentially decayed event count (time constant ``tau`` seconds)."""

    __slots__ = ("count", "last")

    def __init__(self) -> None:
        self.count = 0.0
        self.last = 0.0

    def value_at(self, t: float, tau: float) -> float:
        if self.count == 0.0:
            return 0.0
        return self.count * math.exp(-max(0.0, t - self.last) / tau)

    def add(self, t: float, tau: float) -> None:
        self.count = self.value_at(t, tau) + 1.0
        self.last = max(self.last, t)

    def __getstate__(self) -> tuple[float, float]:
        return (self.count, self.last)

    def __setstate__(self, state: tuple[float, float]) -> None:
        self.count, self.last = state


class _ServiceStats:
    __slots__ = ("first", "hours", "long", "short")

    def __init__(self) -> None:
        self.short = _Decayed()
        self.long = _Decayed()
        self.hours = [0.0] * 24
        self.first = -1.0

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.short, self.long, self.hours, self.first)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.short, self.long, self.hours, self.first = state


def _kind(service: str, name: str) -> str:
    return f"{service}/{name}"


# Feature values: the specific (service, name) kind carries most weight; coarser features
# (service, name) less; context shared by almost every alert (severity, source, hour) little,
# so a verdict on one kind of alert barely moves alerts of unrelated kinds.
KIND_W = 1.0
COARSE_W = 0.5
CONTEXT_W = 0.2
SHAPE_W = 0.3  # incident shape (size, spread, activity elsewhere): shared by many incidents


def alert_features(
    service: str, name: str, severity: Severity, source: str, ts: datetime
) -> dict[str, float]:
    """One-hot features of an alert that are known both when scoring and when learning."""
    x = {
        f"kind={service}/{name}": KIND_W,
        f"svc={service}": COARSE_W,
        f"name={name}": COARSE_W,
        f"sev={severity}": CONTEXT_W,
        f"hour={ts.hour // 4}": CONTEXT_W,
    }
    if source:
        x[f"src={source}"] = CONTEXT_W
    return x


def _bucket(n: int, edges: tuple[int, ...]) -> str:
    """``"<=e"`` for the first edge ``e`` with ``n <= e``, else ``">last"``."""
    for e in edges:
        if n <= e:
            return f"<={e}"
    return f">{edges[-1]}"


def incident_features(incident: Incident, context: int) -> dict[str, float]:
    """Features of an incident *as it is now* (what is known when its page is decided).

    ``context``: alert kinds active elsewhere in the system in the co-occurrence window.
    """
    refs = incident.alerts
    x: dict[str, float] = {
        f"i.sev={incident.severity}": CONTEXT_W,
        f"i.alerts={_bucket(len(refs), (1, 2, 4))}": SHAPE_W,
        f"i.services={_bucket(len(incident.services), (1, 2))}": SHAPE_W,
        f"i.context={_bucket(context, (0, 2, 5))}": SHAPE_W,
    }
    if refs:
        first = refs[0]
        x[f"i.first={first.service}/{first.name}"] = KIND_W
        x[f"i.first_svc={first.service}"] = COARSE_W
        x[f"i.first_name={first.name}"] = COARSE_W
        x[f"i.hour={first.timestamp.hour // 4}"] = CONTEXT_W
        for name in sorted({r.name for r in refs[1:9]} - {first.name}):
            x[f"i.name={name}"] = CONTEXT_W
    return x


class AlertScorer:
    """Novelty + actionability for alerts, priority for incidents; learns from feedback."""

    def __init__(self, settings: ScoringSettings | None = None) -> None:
        self.settings = s = settings or ScoringSettings()
        self.version = 0
        self.classifier = linear_model.LogisticRegression(
            optimizer=optim.SGD(s.learning_rate),
            l2=s.l2,
            intercept_init=s.prior_logit,
            intercept_lr=0.0,  # the prior stays: only features say "this kind is noise"
        )
        self._services: LRU[str, _ServiceStats] = LRU(s.max_services)
        self._kinds: LRU[str, _Decayed] = LRU(s.max_kinds)
        self._pairs = PairMemory(s.max_pairs)
        # distinct recent alert kinds -> last time, oldest first
        self._recent: dict[str, float] = {}
        self._last_t = 0.0
        self.incident_classifier = linear_model.LogisticRegression(
            optimizer=optim.SGD(s.incident_learning_rate),
            l2=s.l2,
            intercept_init=s.prior_logit,
            intercept_lr=0.0,
        )
        # incident id -> distinct feature dicts seen at its page decisions (learned on verdict)
        self._decisions: LRU[str, list[dict[str, float]]] = LRU(s.max_incidents)
        self._decision_t: OrderedDict[str, float] = OrderedDict()  # same ids, oldest first

    # -- novelty ------------------------------------------------------------------------------
    def _novelty_parts(self, alert: Alert, t: float) -> tuple[float, float, float, float]:
        s = self.settings
        kind = _kind(alert.service, alert.name)
        k = self._kinds.get(kind)
        rarity = 1.0 / (1.0 + (k.value_at(t, s.long_tau_s) if k else 0.0))
        svc = self._services.get(alert.service)
        burst = 0.0
        tod = 1.0
        if svc is not None:
            short_rate = (svc.short.value_at(t, s.short_tau_s) + 1.0) / s.short_tau_s
            span = min(s.long_tau_s, max(s.short_tau_s, t - svc.first))
            long_rate = (svc.long.value_at(t, s.long_tau_s) + 1.0) / span
            ratio = math.log10(short_rate / long_rate)
            burst = ratio / (1.0 + ratio) if ratio > 0.0 else 0.0
            total = sum(svc.hours)
            share = (svc.hours[alert.timestamp.hour] + 1.0) / (total + 24.0)
            tod = max(0.0, 1.0 - 24.0 * share)
        return rarity, burst, tod, self._unseen_share(kind, t)

    def _unseen_share(self, kind: str, t: float) -> float:
        """Share of the other kinds seen within the co-occurrence window that were never
        seen together with ``kind`` before.

        ``_recent`` is in observation order, and when a kind is observed it is paired with
        every kind already there: only kinds observed after ``kind`` last was can be unseen
        partners, so the scan stops at ``kind`` (O(kinds since), not O(recent)).
        """
        recent = self._recent
        window = self.settings.cooccurrence_window_s
        horizon = t - window
        others = 0
        for when in recent.values():  # late alerts leave old kinds anywhere: count them all
            if when >= horizon:
                others += 1
        own = recent.get(kind)
        if own is not None and own >= horizon:
            others -= 1
        if others <= 0:
            return 0.0
        unseen = 0
        seen_now, seen_before = self._pairs.current, self._pairs.previous
        for other in reversed(recent):
            if other == kind:
                break
            if recent[other] < horizon:
                continue
            pair = (kind, other) if kind < other else (other, kind)
            if pair not in seen_now and pair not in seen_before:
                unseen += 1
        return unseen / others

    def _observe(self, alert: Alert, t: float) -> None:
        s = self.settings
        kind = _kind(alert.service, alert.name)
        self._kinds.touch(kind, _Decayed()).add(t, s.long_tau_s)
        svc = self._services.touch(alert.service, _ServiceStats())
        if svc.first < 0:
            svc.first = t
        svc.short.add(t, s.short_tau_s)
        svc.long.add(t, s.long_tau_s)
        svc.hours[alert.timestamp.hour] += 1.0
        recent = self._recent
        window = s.cooccurrence_window_s
        while recent:
            oldest = next(iter(recent))
            if t - recent[oldest] > window or len(recent) >= s.max_recent:
                del recent[oldest]
            else:
                break
        add = self._pairs.current.add
        # kinds before ``kind`` were paired with it when it was last observed
        for other in reversed(recent):
            if other == kind:
                break
            add((kind, other) if kind < other else (other, kind))
        recent.pop(kind, None)
        recent[kind] = t
        self._pairs.rotate_if_full(recent)
        self._last_t = max(self._last_t, t)

    # -- public API ---------------------------------------------------------------------------
    def features(self, alert: Alert, parts: tuple[float, float, float, float]) -> dict[str, float]:
        """Classifier features (novelty enters the priority, not the classifier)."""
        del parts
        return alert_features(alert.service, alert.name, alert.severity, "", alert.timestamp)

    def score(self, alert: Alert) -> AlertScore:
        """Score ``alert`` from what was seen before it, then observe it (streaming step).

        A resolution is no news: its novelty is 0 and only a firing alert is observed.
        """
        t = alert.epoch
        firing = alert.status is AlertStatus.firing
        parts = self._novelty_parts(alert, t) if firing else (0.0, 0.0, 0.0, 0.0)
        novelty = 0.35 * parts[0] + 0.25 * parts[1] + 0.15 * parts[2] + 0.25 * parts[3]
        x = self.features(alert, parts)
        actionability = float(self.classifier.predict_proba_one(x).get(True, 0.0))
        if firing:
            self._observe(alert, t)
        return AlertScore(novelty=min(1.0, max(0.0, novelty)), actionability=actionability)

    def actionability_of(self, ref: AlertRef) -> float:
        """Current actionability of an incident member."""
        return float(self.classifier.predict_proba_one(self._ref_features(ref)).get(True, 0.0))

    def _ref_features(self, ref: AlertRef) -> dict[str, float]:
        """The features ``score`` gave the alert (they depend on its identity fields only)."""
        return alert_features(ref.service, ref.name, ref.severity, "", ref.timestamp)

    def _context(self, incident: Incident) -> int:
        """Alert kinds active elsewhere (not in ``incident``) in the co-occurrence window."""
        own = {_kind(r.service, r.name) for r in incident.alerts}
        horizon = self._last_t - self.settings.cooccurrence_window_s
        return sum(1 for kind, when in self._recent.items() if when >= horizon and kind not in own)

    def incident_actionability(self, incident: Incident) -> float:
        """P(page) of the incident as it is now, from the incident-level classifier."""
        x = incident_features(incident, self._context(incident))
        return float(self.incident_classifier.predict_proba_one(x).get(True, 0.0))

    def hold_until(self, incident: Incident) -> float | None:
        """Epoch until which the page of ``incident`` (about to page) is held back, or None.

        Called at each page decision; the features seen are kept to learn the verdict from.
        A page is held when the incident-level classifier rates the incident under
        ``pause_threshold``, until the incident has been open ``pause_s`` seconds.
        """
        s = self.settings
        if not s.incident_learning:
            return None
        x = incident_features(incident, self._context(incident))
        self._expire_decisions(incident.id, incident.updated_at.timestamp())
        seen = self._decisions.touch(incident.id, [])
        if x not in seen and len(seen) < 4:
            seen.append(x)
        p = float(self.incident_classifier.predict_proba_one(x).get(True, 0.0))
        if p >= s.pause_threshold:
            return None
        return incident.opened_at.timestamp() + s.pause_s

    def _expire_decisions(self, incident_id: str, now: float) -> None:
        """Note a decision on ``incident_id`` at ``now``; forget the decision-time views of
        incidents decided on last more than ``decision_ttl_s`` before it (and the times of
        incidents past ``max_incidents``, as the views' LRU does)."""
        times = self._decision_t
        times[incident_id] = max(now, times.pop(incident_id, now))
        horizon = now - self.settings.decision_ttl_s
        while times:
            oldest, t = next(iter(times.items()))
            if t >= horizon and len(times) <= self.settings.max_incidents:
                break
            times.popitem(last=False)
            self._decisions.pop(oldest, None)

    def learn(self, incident: Incident, fb: Feedback) -> list[ModelUpdate]:
        """Teach the verdict on ``incident``: the alert classifier (one ``learn_one`` per
        firing alert) and the incident classifier (one per distinct decision-time view)."""
        label = actionability_label(fb)
        if label is None:
            return []
        refs = [r for r in incident.alerts if r.status is AlertStatus.firing] or list(
            incident.alerts
        )
        if not refs:
            return []
        before = self.version
        for ref in refs:
            self.classifier.learn_one(self._ref_features(ref), label)
        self.version += 1

        def update(model: str, examples: int, detail: str) -> ModelUpdate:
            return ModelUpdate(
                incident_id=incident.id,
                feedback=feedback_kind(fb),
                feedback_at=fb.timestamp,
                applied_at=max(fb.timestamp, incident.updated_at),
                model=model,
                version_before=before,
                version_after=self.version,
                label=f"page={'true' if label else 'false'}",
                examples=examples,
                user=fb.user,
                detail=detail,
            )

        services = sorted({r.service for r in refs})
        updates = [
            update(ACTIONABILITY_MODEL, len(refs), f"{len(refs)} alerts of services {services}")
        ]
        if self.settings.incident_learning:
            views = self._decisions.get(incident.id) or [
                incident_features(incident, self._context(incident))
            ]
            for x in views:
                self.incident_classifier.learn_one(x, label)
            updates.append(
                update(
                    INCIDENT_MODEL, len(views), f"{len(views)} decision-time views of the incident"
                )
            )
        return updates

    def annotate(self, incident: Incident, scores: list[AlertScore]) -> None:
        """Set ``incident.priority``; set ``page = False`` when its actionability is too low."""
        if scores:
            act = max(sc.actionability for sc in scores)
            nov = max(sc.novelty for sc in scores)
        else:
            act = max((self.actionability_of(r) for r in incident.alerts), default=1.0)
            nov = 0.0
        sev = SEVERITY_RANK.get(incident.severity, 1) / 3.0
        incident.priority = round(min(1.0, max(0.0, 0.6 * act + 0.25 * nov + 0.15 * sev)), 6)
        if act < self.settings.page_threshold:
            incident.page = False

    # -- persistence --------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        state = {k: v for k, v in self.__dict__.items() if k != "settings"}
        return pickle.dumps(
            {"version": SNAPSHOT_VERSION, "state": state}, protocol=pickle.HIGHEST_PROTOCOL
        )

    @classmethod
    def restore(cls, data: bytes, settings: ScoringSettings | None = None) -> AlertScorer:
        payload = pickle.loads(data)
        # version 1 (no incident-level model) restores with a fresh incident model
        if not isinstance(payload, dict) or payload.get("version") not in (1, SNAPSHOT_VERSION):
            raise ValueError("not a stormwatch alert-scorer snapshot (or an unknown version)")
        scorer = cls(settings)
        payload["state"].pop("_features", None)  # older snapshots: a cache of alert features
        scorer.__dict__.update(payload["state"])
        if isinstance(scorer._recent, deque):  # older snapshots: a deque of (kind, time)
            scorer._recent = dict(scorer._recent)
        s = scorer.settings
        if isinstance(scorer._pairs, LRU):  # older snapshots: an LRU of pair counts
            pairs = PairMemory(s.max_pairs)
            for pair in scorer._pairs:
                pairs.current.add(pair)
                pairs.rotate_if_full(scorer._recent)
            scorer._pairs = pairs
        # the configured bounds apply to a restored scorer too (the classifiers keep the
        # optimizer they were trained with)
        scorer._pairs.maxsize = s.max_pairs
        for lru, size in (
            (scorer._services, s.max_services),
            (scorer._kinds, s.max_kinds),
            (scorer._decisions, s.max_incidents),
        ):
            lru.maxsize = size
            while len(lru) > size:
                lru.popitem(last=False)
        return scorer

    def clone(self) -> AlertScorer:
        return copy.deepcopy(self)
