"""PagerDuty Events API v2: trigger / acknowledge / resolve and change events."""

from __future__ import annotations

import json

import pytest

from pipeline.domain.dedup import deduplicate, fingerprints_of
from pipeline.domain.normalize import NormalizeError, normalize_message
from pipeline.domain.schemas import AlertStatus, Severity
from tests.unit.formats_helpers import assert_resolve_closes, sample, sample_obj


def test_trigger_from_the_docs() -> None:
    [alert] = normalize_message(sample("pagerduty-trigger.json"))
    assert alert.source == "pagerduty"
    assert (alert.service, alert.name, alert.severity) == ("mysql", "disk", Severity.critical)
    assert alert.labels == {"dedup_key": "srv01/mysql"}
    assert alert.timestamp.isoformat() == "2015-07-17T08:42:58.315000+00:00"
    a = alert.annotations
    assert a["summary"] == "DISK at 99% on machine prod-datapipe03.example.com"
    assert a["source"] == "prod-datapipe03.example.com"
    assert (a["group"], a["class"], a["component"]) == ("prod-datapipe", "disk", "mysql")
    assert (a["free space"], a["load avg"]) == ("1%", "0.75")
    assert a["client"] == "Sample Monitoring Service"
    assert json.loads(a["links"])[0]["href"] == "http://pagerduty.example.com"
    assert "images" in a
    assert "routing_key" not in a and all("e93facc0" not in v for v in a.values())


def test_resolve_with_its_payload_closes_the_trigger() -> None:
    [firing] = normalize_message(sample("pagerduty-trigger.json"))
    [resolved] = normalize_message(sample("pagerduty-resolve.json"))
    assert_resolve_closes(firing, resolved)


def test_alertmanager_pagerduty_notifier_trigger_and_resolve_match() -> None:
    # real Alertmanager 0.25 PagerDuty notifications: the summary says [FIRING:1] / [RESOLVED]
    [firing] = normalize_message(sample("pagerduty-alertmanager-trigger.json"))
    [resolved] = normalize_message(sample("pagerduty-alertmanager-resolve.json"))
    assert_resolve_closes(firing, resolved)
    assert not firing.name.startswith("[")
    raw = sample_obj("pagerduty-alertmanager-trigger.json")
    assert firing.labels == {"dedup_key": raw["dedup_key"]}
    assert firing.annotations["summary"] == raw["payload"]["summary"]


def test_bare_resolve_is_refused_with_the_reason() -> None:
    with pytest.raises(NormalizeError) as info:
        normalize_message(sample("pagerduty-resolve-bare.json"))
    assert "srv01/mysql" in str(info.value) and "payload" in str(info.value)


def test_acknowledge_is_a_repeat_of_the_firing_series() -> None:
    [firing] = normalize_message(sample("pagerduty-trigger.json"))
    event = sample_obj("pagerduty-trigger.json")
    event["event_action"] = "acknowledge"
    [ack] = normalize_message(json.dumps(event).encode())
    assert ack.status is AlertStatus.firing and ack.id != firing.id
    fps = fingerprints_of([firing, ack])
    assert fps[0] == fps[1]
    assert deduplicate([firing, ack], fps, {}).duplicates == 1


def test_trigger_needs_summary_source_and_a_severity() -> None:
    event = sample_obj("pagerduty-trigger.json")
    del event["payload"]["source"]
    with pytest.raises(NormalizeError, match=r"payload\.source"):
        normalize_message(json.dumps(event).encode())
    event = sample_obj("pagerduty-trigger.json")
    event["payload"]["severity"] = "sev9"
    with pytest.raises(NormalizeError, match="severity"):
        normalize_message(json.dumps(event).encode())
    event["event_action"] = "snooze"
    with pytest.raises(NormalizeError, match="event_action 'snooze'"):
        normalize_message(json.dumps(event).encode())


def test_change_event_is_context_that_never_holds_an_incident_open() -> None:
    firing, resolved = normalize_message(sample("pagerduty-change.json"))
    assert firing.severity is Severity.info
    assert firing.labels["change"] == "true"
    assert firing.service == "acme-build-pipeline-tool-default-i-9999"
    assert firing.name == "Build Success: Increase snapshot create timeout to 30 seconds"
    assert firing.annotations["build_number"] == "2"
    assert json.loads(firing.annotations["links"])[0]["text"] == "View more details in Acme!"
    assert firing.timestamp == resolved.timestamp
    assert_resolve_closes(firing, resolved)


def test_change_events_are_separate_series_and_redelivery_is_a_duplicate() -> None:
    event = sample_obj("pagerduty-change.json")
    event["payload"]["custom_details"]["service"] = "checkoutservice"
    first = normalize_message(json.dumps(event).encode())
    assert first[0].service == "checkoutservice"
    again = normalize_message(json.dumps(event).encode())
    assert [a.id for a in again] == [a.id for a in first]
    event["payload"]["timestamp"] = "2020-07-17T09:42:58Z"
    other = normalize_message(json.dumps(event).encode())
    assert fingerprints_of(other)[0] != fingerprints_of(first)[0]


def test_change_event_needs_a_summary() -> None:
    with pytest.raises(NormalizeError, match="summary"):
        normalize_message(json.dumps({"routing_key": "k", "payload": {}}).encode())
