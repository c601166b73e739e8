"""CloudEvents 1.0: structured mode, binary mode on Kafka (ce_) and HTTP (ce-)."""

from __future__ import annotations

import base64
import json

import pytest

from pipeline.domain.normalize import NormalizeError, normalize_message
from pipeline.domain.schemas import AlertStatus, Severity
from tests.unit.formats_helpers import (
    assert_resolve_closes,
    binary_sample,
    sample,
    sample_obj,
)


def _resolve_of(event: dict, new_id: str) -> dict:
    out = json.loads(json.dumps(event))
    out["id"] = new_id
    out["time"] = "2022-08-22T04:10:00Z"
    out["data"]["status"] = "resolved"
    return out


def test_structured_event_maps_attributes_and_keeps_the_rest() -> None:
    [alert] = normalize_message(sample("cloudevents-structured.json"))
    assert alert.id == "b2b3f0a4-6d0e-4c1e-9a57-3f1d4f0c2a11"
    assert alert.source == "//monitoring.example.com/projects/shop/checks/latency"
    assert (alert.service, alert.name) == ("checkoutservice", "HighLatencyP99")
    assert (alert.severity, alert.value) == (Severity.critical, 2.3)
    assert alert.labels == {"pod": "checkout-7f9c", "namespace": "shop"}
    assert alert.annotations["runbook"] == "https://runbooks.example.com/latency"
    assert alert.annotations["ce_traceparent"].startswith("00-0af7651916cd43dd")
    assert alert.annotations["ce_dataschema"] == "https://stormwatch.dev/schemas/alert.json"
    assert alert.annotations["ce_datacontenttype"] == "application/json"


def test_structured_resolve_closes_its_alert() -> None:
    event = sample_obj("cloudevents-structured.json")
    [firing] = normalize_message(json.dumps(event).encode())
    [resolved] = normalize_message(json.dumps(_resolve_of(event, "r-1")).encode())
    assert_resolve_closes(firing, resolved)


def test_structured_data_base64() -> None:
    event = sample_obj("cloudevents-structured.json")
    data = event.pop("data")
    event["data_base64"] = base64.b64encode(json.dumps(data).encode()).decode()
    [alert] = normalize_message(json.dumps(event).encode())
    assert alert.value == 2.3


def test_structured_batch() -> None:
    event = sample_obj("cloudevents-structured.json")
    batch = [event, _resolve_of(event, "r-2")]
    alerts = normalize_message(
        json.dumps(batch).encode(),
        {"content-type": "application/cloudevents-batch+json"},
        fmt="cloudevents",
    )
    assert [a.status for a in alerts] == [AlertStatus.firing, AlertStatus.resolved]


def test_binary_kafka_headers() -> None:
    value, headers = binary_sample("cloudevents-binary-kafka.json")
    [alert] = normalize_message(value, headers)
    assert alert.id == "5f1c2c9e-0b7a-4d7e-8f39-8c3c8b7a9d01"
    assert (alert.service, alert.name, alert.severity) == (
        "cartservice",
        "HighErrorRate",
        Severity.error,
    )
    assert alert.timestamp.isoformat() == "2022-08-22T03:55:02.123456+00:00"
    assert alert.labels == {"namespace": "shop", "route": "/cart"}
    assert alert.value == 0.12
    assert alert.annotations["ce_traceparent"].startswith("00-4bf92f35")
    assert normalize_message(value, headers, fmt="cloudevents") == [alert]


def test_binary_resolve_closes_its_alert() -> None:
    value, headers = binary_sample("cloudevents-binary-kafka.json")
    [firing] = normalize_message(value, headers)
    resolve_headers = {**headers, "ce_id": "r-9", "ce_status": "resolved"}
    data = {**json.loads(value), "status": None}  # the status comes from the extension
    [resolved] = normalize_message(json.dumps(data).encode(), resolve_headers)
    assert_resolve_closes(firing, resolved)


def test_binary_http_headers_text_data_and_percent_encoding() -> None:
    body, headers = binary_sample("cloudevents-binary-http.json")
    [alert] = normalize_message(body, headers)
    assert (alert.service, alert.name, alert.severity) == (
        "redis-cart",
        "DiskAlmostFull",
        Severity.warning,
    )
    assert alert.annotations["summary"] == "disk /data 91% full on redis-cart-0"
    assert alert.annotations["ce_comment"] == "disk 91% full — grows 2%/h"
    assert alert.annotations["ce_datacontenttype"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("spelling", ["ce_", "ce-", "CE_", "Ce-"])
def test_both_header_spellings_on_any_transport(spelling: str) -> None:
    value, headers = binary_sample("cloudevents-binary-kafka.json")
    respelled = {(spelling + k[3:] if k.startswith("ce_") else k): v for k, v in headers.items()}
    [alert] = normalize_message(value, respelled)
    assert alert.service == "cartservice"


def test_binary_data_that_is_an_alertmanager_webhook() -> None:
    headers = {
        "ce_specversion": "1.0",
        "ce_id": "k-1",
        "ce_source": "knative://alertmanager",
        "ce_type": "alertmanager.webhook",
        "content-type": "application/json",
    }
    [alert] = normalize_message(sample("alertmanager-firing.json"), headers)
    assert alert.source == "alertmanager"
    assert alert.annotations["ce_datacontenttype"] == "application/json"


def test_structured_content_type_header_means_the_body_is_the_event() -> None:
    headers = {"ce_specversion": "1.0", "content-type": "application/cloudevents+json"}
    [alert] = normalize_message(sample("cloudevents-structured.json"), headers)
    assert alert.name == "HighLatencyP99"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"ce_specversion": "0.3"}, "specversion"),
        ({"ce_type": ""}, "'type'"),
        ({"ce_subject": ""}, "subject"),
        ({"content-type": "image/png"}, "neither JSON nor text"),
        ({"ce_severity": ""}, "severity"),
    ],
)
def test_binary_errors_say_what_is_wrong(change: dict[str, str], needle: str) -> None:
    value, headers = binary_sample("cloudevents-binary-kafka.json")
    with pytest.raises(NormalizeError) as info:
        normalize_message(value, {**headers, **change})
    assert needle in str(info.value)


def test_binary_data_not_json() -> None:
    _, headers = binary_sample("cloudevents-binary-kafka.json")
    with pytest.raises(NormalizeError) as info:
        normalize_message(b"{oops", headers)
    assert info.value.error == "decode"
