"""Paging decisions of the stage chain: held pages learned from verdicts, release, restore."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from pipeline.domain.pipeline import AlertPipeline
from pipeline.domain.schemas import (
    Alert,
    AlertStatus,
    EventType,
    Feedback,
    FeedbackAction,
    IncidentEvent,
    Severity,
    Verdict,
)
from pipeline.domain.scoring import INCIDENT_MODEL, AlertScorer, ScoringSettings
from pipeline.domain.topology import Topology

T0 = datetime(2024, 5, 1, 0, 0, tzinfo=UTC).timestamp()
TOPO = Topology.from_edges("shop", [("frontend", "batch"), ("frontend", "payments")])
_n = 0


def _alert(service: str, name: str, t: float, status: str = "firing") -> Alert:
    global _n
    _n += 1
    return Alert(
        id=f"a{_n}",
        source="test",
        service=service,
        name=name,
        severity=Severity.critical,
        status=AlertStatus(status),
        timestamp=datetime.fromtimestamp(t, UTC),
        labels={"pod": "0"},
    )


def _run(pipe: AlertPipeline, alerts: list[Alert], until: float) -> list[IncidentEvent]:
    """Process ``alerts`` in order with a 5-s lifecycle clock, up to ``until``."""
    events: list[IncidentEvent] = []
    known: dict[str, str | None] = {}
    now = alerts[0].epoch
    for a in alerts:
        while now + 5.0 <= a.epoch:
            now += 5.0
            events += pipe.tick(now)
        out = pipe.process([a], known)
        known.update(out.dedup_states)
        events += out.events
    while now + 5.0 <= until:
        now += 5.0
        events += pipe.tick(now)
    return events


def _transient(pipe: AlertPipeline, t: float, service: str = "batch") -> list[IncidentEvent]:
    fire = _alert(service, "CPUSaturation", t)
    resolve = msgspec.structs.replace(
        fire,
        id=f"{fire.id}-r",
        status=AlertStatus.resolved,
        timestamp=datetime.fromtimestamp(t + 60, UTC),
    )
    return _run(pipe, [fire, resolve], t + 400)


def _noise(iid: str, t: float) -> Feedback:
    return Feedback(
        incident_id=iid,
        action=FeedbackAction.verdict,
        verdict=Verdict.noise,
        timestamp=datetime.fromtimestamp(t, UTC),
        user="ana",
    )


def _teach_noise(pipe: AlertPipeline, scorer: AlertScorer, n: int) -> None:
    for k in range(n):
        t = T0 + 3600.0 * (k + 1)
        events = _transient(pipe, t)
        inc = events[-1].incident
        updates = scorer.learn(inc, _noise(inc.id, t + 700))
        assert any(u.model == INCIDENT_MODEL and u.label == "page=false" for u in updates)


def test_untaught_incidents_page_at_once() -> None:
    pipe = AlertPipeline(TOPO, scorer=AlertScorer())
    events = _transient(pipe, T0)
    assert events[0].type is EventType.opened and events[0].incident.page is True


def test_learned_noise_is_held_and_never_pages_if_it_resolves() -> None:
    scorer = AlertScorer()
    pipe = AlertPipeline(TOPO, scorer=scorer)
    _teach_noise(pipe, scorer, 6)
    events = _transient(pipe, T0 + 3600.0 * 20)
    assert events and not any(ev.incident.page for ev in events)
    # an unrelated kind of incident still pages at once
    other = _run(pipe, [_alert("payments", "ErrorRateHigh", T0 + 3600.0 * 21)], T0 + 3600 * 21)
    assert other[0].incident.page is True


def test_held_page_is_released_when_the_incident_stays_open() -> None:
    scorer = AlertScorer(ScoringSettings(pause_s=300.0, page_threshold=0.0))  # hold only
    pipe = AlertPipeline(TOPO, scorer=scorer)
    _teach_noise(pipe, scorer, 6)
    t = T0 + 3600.0 * 30
    events = _run(pipe, [_alert("batch", "CPUSaturation", t)], t + 200)
    assert events and not any(ev.incident.page for ev in events)
    # a checkpoint taken while the page is held restores the hold
    restored = AlertPipeline(TOPO, scorer=AlertScorer.restore(scorer.snapshot(), scorer.settings))
    restored.restore(pipe.snapshot())
    for p in (pipe, restored):
        later = [ev for now in range(205, 400, 5) for ev in p.tick(t + now)]
        released = [ev for ev in later if ev.incident.page]
        assert released and released[0].type is EventType.escalated
        assert released[0].at.timestamp() == t + 300.0


def test_incident_learning_can_be_switched_off() -> None:
    scorer = AlertScorer(ScoringSettings(incident_learning=False, page_threshold=0.0))
    pipe = AlertPipeline(TOPO, scorer=scorer)
    for k in range(6):
        t = T0 + 3600.0 * (k + 1)
        inc = _transient(pipe, t)[-1].incident
        assert all(u.model != INCIDENT_MODEL for u in scorer.learn(inc, _noise(inc.id, t)))
    assert _transient(pipe, T0 + 3600.0 * 20)[0].incident.page is True
