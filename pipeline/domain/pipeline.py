"""The stage chain shared by the streaming worker and the offline replay.

``dedup -> score -> correlate -> annotate``: each stage is one object with one job. The chain
is pure: the caller supplies the recorded dedup states and persists what the outcome says,
which is what lets replay, tests and benchmarks run the very code the worker runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from pipeline.domain.correlate import CorrelationSettings, Correlator
from pipeline.domain.dedup import deduplicate, fingerprints_of
from pipeline.domain.schemas import Alert, EventType, Feedback, Incident, IncidentEvent
from pipeline.domain.scoring import AlertScore, AlertScorer
from pipeline.domain.topology import Topology


@dataclass
class BatchOutcome:
    """What one batch produced: events to publish and states to persist."""

    events: list[IncidentEvent] = field(default_factory=list)
    dedup_states: dict[str, str] = field(default_factory=dict)
    received: int = 0
    duplicates: int = 0


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


class AlertPipeline:
    """Dedup, score, correlate and annotate alerts for one partition of correlation domains."""

    def __init__(
        self,
        topology: Topology,
        *,
        correlation: CorrelationSettings | None = None,
        scorer: AlertScorer | None = None,
        correlator: Correlator | None = None,
    ) -> None:
        self.topology = topology
        self.correlation = correlation
        self.correlator = correlator or Correlator(topology, correlation)
        self.scorer = scorer
        self._scores: dict[str, list[tuple[float, float]]] = {}

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
                for ev in new:
                    if alert.id in ev.incident.alert_ids:
                        pair = (score.novelty, score.actionability)
                        self._scores.setdefault(ev.incident.id, []).append(pair)
                        break
            events.extend(new)
        outcome.events = self._annotate(coalesce(events))
        return outcome

    def tick(self, now: float) -> list[IncidentEvent]:
        """Advance the lifecycle clock (epoch seconds) and forget state of closed incidents."""
        events = self._annotate(coalesce(self.correlator.advance(now)))
        tracked = {inc.id for inc in self.correlator.incidents()}
        for iid in [i for i in self._scores if i not in tracked]:
            del self._scores[iid]
        return events

    def feedback(self, fb: Feedback) -> list[IncidentEvent]:
        """Apply a responder's feedback to the incident it names."""
        return self._annotate(coalesce(self.correlator.apply_feedback(fb)))

    def incident(self, incident_id: str) -> Incident | None:
        return self.correlator.get(incident_id)

    def _annotate(self, events: list[IncidentEvent]) -> list[IncidentEvent]:
        if self.scorer is None:
            return events
        seen: set[str] = set()
        for ev in events:
            inc = ev.incident
            if inc.id in seen:
                continue
            seen.add(inc.id)
            pairs = self._scores.get(inc.id, [])
            self.scorer.annotate(inc, [AlertScore(novelty=n, actionability=a) for n, a in pairs])
        return events

    def snapshot(self) -> bytes:
        """Correlator state plus the per-incident scores (the scorer checkpoints separately)."""
        return msgspec.msgpack.encode(
            {"correlator": self.correlator.snapshot(), "scores": self._scores}
        )

    def restore(self, data: bytes) -> None:
        state = msgspec.msgpack.decode(data)
        self.correlator = Correlator.restore(self.topology, self.correlation, state["correlator"])
        self._scores = {k: [(p[0], p[1]) for p in v] for k, v in state["scores"].items()}
