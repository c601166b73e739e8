"""Bounded incident events: any incident fits the bound, counts cover every member, and the
live incident is never changed by building its view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.event_view import (
    MIN_EVENT_BYTES,
    EventLimits,
    alert_counts,
    counts_of,
    encode_event,
    encode_event_and_record,
    minimal_event,
    significant,
)
from pipeline.domain.schemas import (
    SEVERITY_RANK,
    AlertCount,
    AlertRef,
    AlertStatus,
    EventType,
    Incident,
    IncidentEvent,
    IncidentStatus,
    RootCauseCandidate,
    Severity,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _incident(n: int, services: int = 50) -> Incident:
    alerts = [
        AlertRef(
            id=f"alert-{i:07d}",
            service=f"service-{i % services}",
            name=("HighLatency", "ErrorRate", "PodRestart")[i % 3],
            severity=(Severity.critical, Severity.warning)[i % 2],
            status=AlertStatus.firing if i % 4 else AlertStatus.resolved,
            timestamp=T0 + timedelta(seconds=i),
            reason="calls service-0 (1 hop), 3 s after the first alert",
        )
        for i in range(n)
    ]
    return Incident(
        id="inc-1",
        status=IncidentStatus.open,
        opened_at=T0,
        updated_at=T0,
        alert_ids=[a.id for a in alerts],
        alerts=alerts,
        services=sorted({a.service for a in alerts}),
        root_cause="service-0",
        root_cause_candidates=[
            RootCauseCandidate(service=f"service-{i}", score=0.5, reasons=["r" * 100])
            for i in range(40)
        ],
        explanation="x" * 20_000,
    )


def _decode(data: bytes) -> IncidentEvent:
    return msgspec.json.decode(data, type=IncidentEvent)


@pytest.mark.parametrize("members", [0, 5, 100, 5000, 100_000])
def test_every_incident_fits_the_bound_and_counts_every_member(members: int) -> None:
    inc = _incident(members)
    before = msgspec.json.encode(inc)
    limits = EventLimits(max_bytes=65_536, max_alerts=100)
    data = encode_event(IncidentEvent(type=EventType.updated, incident=inc, at=T0), limits)
    assert len(data) <= limits.max_bytes
    ev = _decode(data)
    assert ev.schema_version == 2
    assert ev.incident.alert_count == members
    assert len(ev.incident.alerts) == len(ev.incident.alert_ids) <= 100
    assert ev.incident.alerts_omitted == members - len(ev.incident.alerts)
    listed = sum(c.count for c in ev.incident.alert_counts)
    assert listed == members or ev.incident.counts_omitted > 0
    assert msgspec.json.encode(inc) == before, "building the view changed the live incident"


@settings(max_examples=30, deadline=None)
@given(st.integers(MIN_EVENT_BYTES, 300_000), st.integers(0, 3000), st.integers(0, 500))
def test_any_bound_is_met(max_bytes: int, members: int, max_alerts: int) -> None:
    inc = _incident(members, services=members // 3 + 1)
    ev = IncidentEvent(type=EventType.updated, incident=inc, at=T0, detail="d" * 10_000)
    limits = EventLimits(max_bytes=max_bytes, max_alerts=max_alerts)
    assert len(encode_event(ev, limits)) <= max_bytes


def test_the_most_significant_members_are_listed() -> None:
    inc = _incident(1000)
    listed = significant(inc.alerts, 10)
    assert all(a.status is AlertStatus.firing and a.severity is Severity.critical for a in listed)
    assert [a.id for a in listed] == sorted(a.id for a in listed), "kept in membership order"
    assert listed[-1].id == "alert-0000998", "newest first among equals"


def test_the_minimal_form_is_small_and_names_the_incident() -> None:
    ev = IncidentEvent(type=EventType.resolved, incident=_incident(10_000), at=T0)
    small = _decode(minimal_event(ev))
    assert len(minimal_event(ev)) < MIN_EVENT_BYTES
    assert small.incident.id == "inc-1" and small.incident.alert_count == 10_000
    assert small.type is EventType.resolved and small.incident.root_cause == "service-0"


def test_a_bound_below_the_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        EventLimits(max_bytes=100)


def test_an_incident_carrying_its_counts_is_viewed_with_them_most_first() -> None:
    # a big incident holds only its newest members; its own counts and alert_count cover
    # every member it had (the correlator keeps them)
    inc = _incident(10)
    inc.alert_count = 1000
    inc.alert_counts = [
        AlertCount(service="b", name="X", count=10, firing=1),
        AlertCount(service="a", name="Y", count=900, firing=5),
        AlertCount(service="a", name="X", count=90, firing=0),
    ]
    ev = IncidentEvent(type=EventType.updated, incident=inc, at=T0)
    got = _decode(encode_event(ev, EventLimits(max_counts=2))).incident
    assert [(c.service, c.name, c.count) for c in got.alert_counts] == [
        ("a", "Y", 900),
        ("a", "X", 90),
    ]
    assert got.counts_omitted == 1
    assert got.alert_count == 1000 and got.alerts_omitted == 1000 - len(got.alert_ids)
    assert [c.service for c in inc.alert_counts] == ["b", "a", "a"]  # the live one unchanged
    assert counts_of(_incident(4)) == alert_counts(_incident(4).alerts)


def _by_sorting(alerts: list[AlertRef], n: int) -> list[AlertRef]:
    order = sorted(
        range(len(alerts)),
        key=lambda i: (
            alerts[i].status is not AlertStatus.firing,
            alerts[i].suppressed,
            -SEVERITY_RANK[alerts[i].severity],
            -i,
        ),
    )
    return [alerts[i] for i in sorted(order[:n])]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.booleans(), st.sampled_from(list(Severity))), max_size=300
    ),
    st.integers(0, 120),
)
def test_the_one_pass_choice_equals_sorting_every_member(
    kinds: list[tuple[bool, bool, Severity]], n: int
) -> None:
    alerts = [
        AlertRef(
            id=f"a{i}",
            service="s",
            name="n",
            severity=sev,
            status=AlertStatus.firing if firing else AlertStatus.resolved,
            timestamp=T0,
            suppressed=supp,
        )
        for i, (firing, supp, sev) in enumerate(kinds)
    ]
    assert significant(alerts, n) == _by_sorting(alerts, n)


def test_the_record_is_the_events_incident() -> None:
    ev = IncidentEvent(type=EventType.updated, incident=_incident(3000), at=T0)
    data, record = encode_event_and_record(ev, EventLimits(max_bytes=65_536))
    assert msgspec.json.decode(record, type=Incident) == _decode(data).incident
