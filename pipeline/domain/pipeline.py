"""The stage chain shared by the streaming worker and the offline replay.

``dedup -> score -> correlate -> annotate``: each stage is one object with one job. The chain
is pure: the caller supplies the recorded dedup states and persists what the outcome says,
which is what lets replay, tests and benchmarks run the very code the worker runs.
"""

from __future__ import annotations

import math
from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import msgspec

from pipeline.domain.correlate import CorrelationSettings, Correlator
from pipeline.domain.correlate.journal import MembershipOp
from pipeline.domain.dedup import deduplicate, fingerprints_of
from pipeline.domain.schemas import (
    Alert,
    AlertStatus,
    EventType,
    Feedback,
    Incident,
    IncidentEvent,
    IncidentStatus,
    ResponderRef,
    RunbookRef,
)
from pipeline.domain.scoring import AlertScore, AlertScorer
from pipeline.domain.topology import Topology


@dataclass
class BatchOutcome:
    """What one batch produced: events to publish and states to persist."""

    events: list[IncidentEvent] = field(default_factory=list)
    dedup_states: dict[str, str] = field(default_factory=dict)
    received: int = 0
    duplicates: int = 0
    #: the scores of the alerts that passed dedup, in order (none without a scorer)
    scores: list[AlertScore] = field(default_factory=list)


_SIGNIFICANCE = {t: i for i, t in enumerate(EventType)}


def coalesce(events: list[IncidentEvent]) -> list[IncidentEvent]:
    """One event per (incident, type), ``updated`` dropped when a more specific type exists.

    Events carry the live incident object, so every kept event shows the final state.
    """
    by_incident: dict[str, dict[EventType, IncidentEvent]] = {}
    for ev in events:
        by_incident.setdefault(ev.incident.id, {}).setdefault(ev.type, ev)
    out: list[IncidentEvent] = []
    for types in by_incident.values():
        if len(types) > 1:
            types.pop(EventType.updated, None)
        out.extend(types.values())
    return out


def _holds(alert_ids: list[str], alert_id: str) -> bool:
    """Is ``alert_id`` among ``alert_ids``? Looked for from the end: the alert an event is
    about joined last (a big incident holds up to ``max_members``)."""
    return any(aid == alert_id for aid in reversed(alert_ids))


def event_tick(t: float, tick_s: float) -> float:
    """The event-time lifecycle tick an alert at ``t`` sees: the last multiple of ``tick_s``."""
    return math.floor(t / tick_s) * tick_s if tick_s > 0 else t


class AlertPipeline:
    """Dedup, score, correlate and annotate alerts for one partition of correlation domains."""

    def __init__(
        self,
        topology: Topology,
        *,
        correlation: CorrelationSettings | None = None,
        scorer: AlertScorer | None = None,
        correlator: Correlator | None = None,
        runbooks: Callable[[Incident], RunbookRef | None] | None = None,
        responders: Callable[[Incident], list[ResponderRef]] | None = None,
    ) -> None:
        self.topology = topology
        #: the runbook of an incident (docs/remediation.md), set on every event's incident
        self.runbooks = runbooks
        #: who should respond (docs/oncall.md), set on every event's incident
        self.responders = responders
        self.correlation = correlation
        self.correlator = correlator or Correlator(topology, correlation)
        self.scorer = scorer
        #: per incident, the highest (novelty, actionability) of its alerts: all annotate uses
        self._scores: dict[str, tuple[float, float]] = {}
        # paging state of tracked incidents: the correlator's paging gate was reached (gated),
        # a page went out (paged), a page is held back until an epoch (held)
        self._gated: set[str] = set()
        self._paged: set[str] = set()
        self._held: dict[str, float] = {}
        self._now = 0.0
        self._ticked = 0.0  # the lifecycle clock's last tick (epoch seconds)

    def process(
        self,
        alerts: list[Alert],
        known: Mapping[str, str | None],
        fps: list[str] | None = None,
    ) -> BatchOutcome:
        """Run one batch of normalized alerts through every stage (``fps``: their
        fingerprints, when the caller already computed them to look up ``known``)."""
        fps = fps if fps is not None else fingerprints_of(alerts)
        dd = deduplicate(alerts, fps, known)
        outcome = BatchOutcome(
            dedup_states=dd.new_states, received=len(alerts), duplicates=dd.duplicates
        )
        events: list[IncidentEvent] = []
        for alert in dd.passed:
            score = self.scorer.score(alert) if self.scorer is not None else None
            new = self.correlator.process(alert)
            if score is not None:
                outcome.scores.append(score)
                # a resolution is no member: looking for it would scan the whole incident
                for ev in new if alert.status is AlertStatus.firing else ():
                    if _holds(ev.incident.alert_ids, alert.id):
                        best = self._scores.get(ev.incident.id, (0.0, 0.0))
                        self._scores[ev.incident.id] = (
                            max(best[0], score.novelty),
                            max(best[1], score.actionability),
                        )
                        break
            events.extend(new)
        if dd.passed:
            self._now = max(self._now, max(a.epoch for a in dd.passed))
        outcome.events = self._annotate(coalesce(events))
        return outcome

    def process_in_event_time(
        self,
        alerts: list[Alert],
        known: Mapping[str, str | None],
        fps: list[str] | None = None,
        tick_s: float = 1.0,
    ) -> BatchOutcome:
        """``process``, with the lifecycle clock ticking in the alerts' own time: the clock
        ticks at the multiples of ``tick_s`` (epoch seconds); before the first alert past a
        multiple not yet ticked, the alerts before it are processed and the clock ticks to
        that multiple, so incidents quiet for long enough resolve before it arrives, as if
        the alerts had come as they happened. Ticking on a fixed grid makes the outcome
        independent of how the alerts are cut into batches. This is what ``replay`` does,
        and the worker under the event clock (a backlog is grouped as it would have been
        live). ``alerts`` in arrival order, normally event-time order."""
        fps = fps if fps is not None else fingerprints_of(alerts)
        total = BatchOutcome()
        # earlier chunks' states count as known (ChainMap only ever writes its first map)
        seen = ChainMap[str, str | None](
            cast(dict[str, str | None], total.dedup_states), cast(dict[str, str | None], known)
        )
        start = 0
        for i, alert in enumerate(alerts):
            due = event_tick(alert.epoch, tick_s)
            if due > self._ticked:
                self._add(total, self.process(alerts[start:i], seen, fps[start:i]))
                start = i
                total.events.extend(self.tick(due))
        self._add(total, self.process(alerts[start:], seen, fps[start:]))
        total.events = coalesce(total.events)
        return total

    def tick_in_event_time(self, now: float, tick_s: float = 1.0) -> list[IncidentEvent]:
        """The tick :meth:`process_in_event_time` gives an alert at ``now``, if not given yet
        (the event-time lifecycle timer: the same outcome whenever it fires)."""
        due = event_tick(now, tick_s)
        return self.tick(due) if due > self._ticked else []

    @staticmethod
    def _add(total: BatchOutcome, part: BatchOutcome) -> None:
        total.events.extend(part.events)
        total.dedup_states.update(part.dedup_states)
        total.received += part.received
        total.duplicates += part.duplicates
        total.scores.extend(part.scores)

    def tick(self, now: float) -> list[IncidentEvent]:
        """Advance the lifecycle clock (epoch seconds) and forget state of closed incidents.

        Incidents whose held-back page is due and that are still open page now (an
        ``escalated`` event).
        """
        self._now = max(self._now, now)
        self._ticked = max(self._ticked, now)
        events = self._annotate(coalesce(self.correlator.advance(now)))
        if self._held:
            due = [i for i, until in self._held.items() if until <= now]
            done = {ev.incident.id for ev in events}
            extra: list[IncidentEvent] = []
            for iid in due:
                inc = self.correlator.get(iid)
                if inc is None or iid in done:
                    continue
                if inc.status is not IncidentStatus.open or inc.merged_into:
                    del self._held[iid]
                    continue
                inc.version += 1
                at = datetime.fromtimestamp(self._held[iid], UTC)
                extra.append(
                    IncidentEvent(
                        type=EventType.escalated,
                        incident=inc,
                        at=at,
                        detail="held page released: incident still open",
                    )
                )
            events.extend(self._annotate(extra))
        tracked = {inc.id for inc in self.correlator.incidents()}
        for iid in [i for i in self._scores if i not in tracked]:
            del self._scores[iid]
        for group in (self._gated, self._paged):
            group.intersection_update(tracked)
        for iid in [i for i in self._held if i not in tracked]:
            del self._held[iid]
        return events

    def feedback(self, fb: Feedback) -> list[IncidentEvent]:
        """Apply a responder's feedback to the incident it names."""
        return self._annotate(coalesce(self.correlator.apply_feedback(fb)))

    def take_membership(self) -> list[MembershipOp]:
        """Membership changes since the last call, in order (see correlate.journal)."""
        return self.correlator.take_membership()

    def incident(self, incident_id: str) -> Incident | None:
        return self.correlator.get(incident_id)

    def _annotate(self, events: list[IncidentEvent]) -> list[IncidentEvent]:
        states = self.correlator.book.states
        for ev in events:
            inc = ev.incident
            st = states.get(inc.id)
            if st is not None:
                inc.common_labels = st.common.get(inc.root_cause or "", {})
            if self.runbooks is not None:
                inc.runbook = self.runbooks(inc)
        if self.responders is not None:
            ranked: dict[str, list[ResponderRef]] = {}
            for ev in events:
                iid = ev.incident.id
                if iid not in ranked:
                    ranked[iid] = self.responders(ev.incident)
                ev.incident.responders = ranked[iid]
        if self.scorer is None:
            return events
        seen: set[str] = set()
        for ev in events:
            inc = ev.incident
            if inc.id in seen:
                continue
            seen.add(inc.id)
            best = self._scores.get(inc.id)
            scores = [AlertScore(novelty=best[0], actionability=best[1])] if best else []
            # the correlator raises ``page`` once, when its paging gate is reached; the scorer
            # may lower it on any change and raise it back when the evidence changes
            if inc.page:
                self._gated.add(inc.id)
            iid = inc.id
            inc.page = iid in self._gated or iid in self._paged
            self.scorer.annotate(inc, scores)
            if iid in self._paged:
                inc.page = True  # a page that went out is never taken back
            elif inc.page and inc.status is not IncidentStatus.open:
                inc.page = False  # over (resolved, merged) before its page went out
                self._held.pop(iid, None)
            elif inc.page:
                until = self.scorer.hold_until(inc)
                if until is not None and self._now < until:
                    inc.page = False
                    self._held[iid] = until
                else:
                    self._held.pop(iid, None)
                    self._paged.add(iid)
            else:
                self._held.pop(iid, None)
        return events

    def snapshot(self) -> bytes:
        """Correlator state plus the per-incident scores (the scorer checkpoints separately)."""
        return msgspec.msgpack.encode(
            {
                "correlator": self.correlator.snapshot(),
                "score_max": self._scores,
                "gated": sorted(self._gated),
                "paged": sorted(self._paged),
                "held": self._held,
                "now": self._now,
                "ticked": self._ticked,
            }
        )

    def restore(self, data: bytes) -> None:
        state = msgspec.msgpack.decode(data)
        self.correlator = Correlator.restore(self.topology, self.correlation, state["correlator"])
        if "score_max" in state:
            self._scores = {k: (v[0], v[1]) for k, v in state["score_max"].items()}
        else:  # older checkpoints: every alert's (novelty, actionability)
            self._scores = {
                k: (max(p[0] for p in v), max(p[1] for p in v))
                for k, v in state["scores"].items()
                if v
            }
        self._gated = set(state.get("gated", ()))
        self._paged = set(state.get("paged", ()))
        self._held = {k: float(v) for k, v in state.get("held", {}).items()}
        self._now = float(state.get("now", 0.0))
        self._ticked = float(state.get("ticked", 0.0))
