"""normalize_message: the one entry point (format forcing, headers, detection, errors)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.normalize import (
    FORMATS,
    GenericMapping,
    NormalizeError,
    detect,
    normalize,
    normalize_message,
)
from tests.unit.formats_helpers import binary_sample, sample, sample_obj

CANONICAL = {
    "id": "a-1",
    "source": "prometheus",
    "service": "checkoutservice",
    "name": "HighLatencyP99",
    "severity": "critical",
    "timestamp": "2022-08-22T03:54:19Z",
}

SAMPLE_FORMATS = [
    ("alertmanager-firing.json", "alertmanager"),
    ("grafana-firing.json", "grafana"),
    ("pagerduty-trigger.json", "pagerduty"),
    ("pagerduty-change.json", "pagerduty"),
    ("cloudevents-structured.json", "cloudevents"),
]


def test_formats_are_the_six_names() -> None:
    assert FORMATS == (
        "canonical",
        "alertmanager",
        "pagerduty",
        "cloudevents",
        "grafana",
        "generic",
    )


@pytest.mark.parametrize(("name", "fmt"), SAMPLE_FORMATS)
def test_each_sample_is_detected_and_can_be_forced(name: str, fmt: str) -> None:
    assert detect(sample_obj(name), None) == fmt
    detected = normalize_message(sample(name))
    forced = normalize_message(sample(name), fmt=fmt)
    assert [a.id for a in detected] == [a.id for a in forced]
    assert normalize(sample(name))[0].id == detected[0].id


@pytest.mark.parametrize(("name", "fmt"), SAMPLE_FORMATS)
def test_forcing_another_format_says_the_payload_is_not_of_it(name: str, fmt: str) -> None:
    for other in ("alertmanager", "pagerduty", "cloudevents"):
        if other == fmt or {other, fmt} == {"alertmanager", "grafana"}:
            continue
        with pytest.raises(NormalizeError) as info:
            normalize_message(sample(name), fmt=other)
        assert f"not a {other} payload" in str(info.value)
        assert info.value.error == "format"


def test_a_grafana_payload_forced_as_alertmanager_reads_as_alertmanager() -> None:
    alerts = normalize_message(sample("grafana-firing.json"), fmt="alertmanager")
    assert {a.source for a in alerts} == {"alertmanager"}


def test_unknown_format_name() -> None:
    with pytest.raises(NormalizeError, match=r"unknown format 'nagios'.*canonical"):
        normalize_message(json.dumps(CANONICAL).encode(), fmt="nagios")


def test_generic_without_a_mapping_says_how_to_configure_one() -> None:
    with pytest.raises(NormalizeError, match="STORMWATCH_FORMATS__GENERIC"):
        normalize_message(b"{}", fmt="generic")


def test_format_header_forces_the_format_and_argument_wins() -> None:
    raw = json.dumps(CANONICAL).encode()
    with pytest.raises(NormalizeError, match="not a pagerduty payload"):
        normalize_message(raw, {"Stormwatch-Format": b"pagerduty"})
    assert normalize_message(raw, {"stormwatch-format": "pagerduty"}, fmt="canonical")


def test_headers_are_case_insensitive_and_bytes_or_text() -> None:
    value, headers = binary_sample("cloudevents-binary-kafka.json")
    as_bytes = {k.upper(): v.encode() for k, v in headers.items()}
    [a] = normalize_message(value, as_bytes)
    [b] = normalize_message(value, headers)
    assert a == b


def test_non_utf8_header_is_a_decode_error() -> None:
    with pytest.raises(NormalizeError) as info:
        normalize_message(b"{}", {"ce_specversion": b"\xff"})
    assert info.value.error == "decode"


def test_headers_without_cloudevents_leave_detection_to_the_payload() -> None:
    [alert] = normalize_message(json.dumps(CANONICAL).encode(), {"traceparent": "00-x"})
    assert alert.id == "a-1"


def test_batches_of_mixed_formats() -> None:
    batch = [sample_obj("pagerduty-trigger.json"), CANONICAL, sample_obj("grafana-firing.json")]
    alerts = normalize_message(json.dumps(batch).encode())
    assert [a.source for a in alerts] == ["pagerduty", "prometheus", "grafana", "grafana"]


def test_forced_canonical_takes_an_alerts_envelope() -> None:
    raw = json.dumps({"alerts": [CANONICAL, {**CANONICAL, "id": "a-2"}]}).encode()
    assert [a.id for a in normalize_message(raw, fmt="canonical")] == ["a-1", "a-2"]


@pytest.mark.parametrize(
    ("raw", "needle", "error"),
    [
        (b"", "empty", "decode"),
        (b"{not json", "not valid JSON", "decode"),
        (b"[]", "empty batch", "invalid"),
        (b"42", "expected a JSON object", "invalid"),
    ],
)
def test_bad_messages_have_a_reason(raw: bytes, needle: str, error: str) -> None:
    with pytest.raises(NormalizeError) as info:
        normalize_message(raw)
    assert needle in str(info.value)
    assert info.value.error == error


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "service",
                    "name",
                    "severity",
                    "status",
                    "timestamp",
                    "alerts",
                    "labels",
                    "specversion",
                    "data",
                    "event_action",
                    "routing_key",
                    "payload",
                    "version",
                    "orgId",
                    "summary",
                    "source",
                    "type",
                    "subject",
                    "time",
                    "x",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)
HEADERS = st.dictionaries(
    st.sampled_from(["ce_specversion", "ce-id", "CE_SOURCE", "ce_type", "content-type", "x"]),
    st.sampled_from(["1.0", "a", "", "application/json", "text/plain", "image/png"]),
    max_size=6,
)


@settings(max_examples=300)
@given(JSON, HEADERS, st.sampled_from([None, *FORMATS]))
def test_any_json_any_headers_any_format_only_normalize_errors(
    obj: object, headers: dict[str, str], fmt: str | None
) -> None:
    mapping = GenericMapping(name="name", service="service", labels="labels", items="")
    with contextlib.suppress(NormalizeError):
        normalize_message(json.dumps(obj).encode(), headers, fmt, mapping)


def test_binary_headers_the_formats_do_not_read_are_ignored() -> None:
    raw = json.dumps(CANONICAL).encode()
    [alert] = normalize_message(raw, {"uber-trace-id": b"\xff\xfe", "stormwatch-format": None})
    assert alert.id == "a-1"
