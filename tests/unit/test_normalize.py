from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain.normalize import NormalizeError, normalize
from pipeline.domain.schemas import AlertStatus, Severity

CANONICAL = {
    "id": "a-17",
    "source": "prometheus",
    "service": "checkoutservice",
    "name": "HighLatencyP99",
    "severity": "critical",
    "status": "firing",
    "timestamp": "2022-08-22T03:54:19Z",
    "labels": {"pod": "checkout-7f9c"},
    "annotations": {"summary": "p99 latency 2.3s"},
    "value": 2.3,
    "extra": "allowed",
}


def test_canonical_alert_round_trips() -> None:
    [alert] = normalize(json.dumps(CANONICAL).encode())
    assert alert.id == "a-17"
    assert alert.severity is Severity.critical
    assert alert.status is AlertStatus.firing
    assert alert.timestamp.isoformat() == "2022-08-22T03:54:19+00:00"
    assert alert.value == 2.3


def test_batch_of_canonical_alerts() -> None:
    second = {**CANONICAL, "id": "a-18"}
    alerts = normalize(json.dumps([CANONICAL, second]).encode())
    assert [a.id for a in alerts] == ["a-17", "a-18"]


def test_real_alertmanager_webhooks(fixtures: Path) -> None:
    for name, service, alertname, severity in [
        ("webhook_1.json", "checkoutservice", "ServiceDown", Severity.critical),
        ("webhook_2.json", "frontend", "HighLatency", Severity.warning),
    ]:
        [alert] = normalize((fixtures / name).read_bytes())
        assert alert.source == "alertmanager"
        assert alert.service == service
        assert alert.name == alertname
        assert alert.severity is severity
        assert alert.status is AlertStatus.firing
        assert alert.timestamp.year == 2026  # nanosecond timestamps accepted


def test_alertmanager_resolved_uses_ends_at(fixtures: Path) -> None:
    payload = json.loads((fixtures / "webhook_1.json").read_bytes())
    payload["status"] = "resolved"
    payload["alerts"][0]["status"] = "resolved"
    payload["alerts"][0]["endsAt"] = "2026-11-24T10:19:46Z"
    [alert] = normalize(json.dumps(payload).encode())
    assert alert.status is AlertStatus.resolved
    assert alert.timestamp.minute == 19
    [firing] = normalize((fixtures / "webhook_1.json").read_bytes())
    assert alert.id != firing.id


def test_pagerduty_and_cloudevents() -> None:
    pd = {
        "routing_key": "x" * 32,
        "event_action": "trigger",
        "dedup_key": "disk-full-db1",
        "payload": {
            "summary": "disk full",
            "source": "db1",
            "severity": "error",
            "component": "postgres",
            "timestamp": "2024-01-01T00:00:00Z",
        },
    }
    [alert] = normalize(json.dumps(pd).encode())
    assert (alert.service, alert.severity, alert.source) == (
        "postgres",
        Severity.error,
        "pagerduty",
    )
    ce = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/monitors/x",
        "type": "HighErrorRate",
        "subject": "cartservice",
        "time": "2024-01-01T00:00:00Z",
        "data": {"severity": "warning", "status": "firing"},
    }
    [alert] = normalize(json.dumps(ce).encode())
    assert (alert.id, alert.service, alert.name) == ("ce-1", "cartservice", "HighErrorRate")


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"42", "expected a JSON object"),
        (json.dumps({**CANONICAL, "severity": "apocalyptic"}).encode(), "severity"),
        (json.dumps({**CANONICAL, "status": "maybe"}).encode(), "status"),
        (json.dumps({**CANONICAL, "timestamp": "yesterday"}).encode(), "timestamp"),
        (json.dumps({k: v for k, v in CANONICAL.items() if k != "service"}).encode(), "service"),
        (json.dumps({"receiver": "x", "version": "4", "alerts": "no"}).encode(), "list"),
    ],
)
def test_malformed_input_has_a_reason(payload: bytes, needle: str) -> None:
    with pytest.raises(NormalizeError) as info:
        normalize(payload)
    assert needle in str(info.value)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    with contextlib.suppress(NormalizeError):
        normalize(raw)
