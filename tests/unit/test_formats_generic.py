"""The generic JSON mapping: Datadog-like and Zabbix-like payloads, paths, maps, errors."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.normalize import GenericMapping, NormalizeError, normalize_message
from pipeline.domain.schemas import AlertStatus, Severity
from tests.unit.formats_helpers import SAMPLES, assert_resolve_closes, sample


def mapping_file(name: str) -> GenericMapping:
    return GenericMapping(**yaml.safe_load((SAMPLES / name).read_text()))


DATADOG = mapping_file("generic-datadog.yaml")
ZABBIX = mapping_file("generic-zabbix.yaml")


def test_datadog_like_webhook() -> None:
    [alert] = normalize_message(sample("generic-datadog-triggered.json"), generic=DATADOG)
    assert alert.source == "datadog"
    assert alert.id == "datadog-7620915366735841012"
    assert (alert.service, alert.name) == ("checkoutservice", "High error rate on checkoutservice")
    assert alert.severity is Severity.critical
    assert alert.labels == {"env": "prod", "service": "checkoutservice", "team": "payments"}
    assert alert.timestamp.isoformat() == "2024-12-06T11:02:09+00:00"
    assert alert.annotations["summary"] == "[P1] [Triggered] High error rate on checkoutservice"
    assert alert.annotations["url"].startswith("https://app.datadoghq.com/event/")
    # every field of the payload is kept
    assert alert.annotations["alert_query"].startswith("sum(last_5m)")
    assert json.loads(alert.annotations["org"]) == {"id": "123456", "name": "Acme"}


def test_datadog_recovery_closes_the_alert() -> None:
    [firing] = normalize_message(sample("generic-datadog-triggered.json"), generic=DATADOG)
    [resolved] = normalize_message(sample("generic-datadog-recovered.json"), generic=DATADOG)
    assert_resolve_closes(firing, resolved)


def test_zabbix_like_webhook() -> None:
    [alert] = normalize_message(sample("generic-zabbix-problem.json"), generic=ZABBIX)
    assert (alert.source, alert.service) == ("zabbix", "cartservice")
    assert alert.name == "High CPU utilization (over 90% for 5m)"
    assert (alert.severity, alert.status, alert.value) == (Severity.error, AlertStatus.firing, 93.4)
    assert alert.labels == {"host": "cart-db-01", "trigger_id": "23456"}
    assert alert.timestamp.isoformat() == "2024-12-06T10:15:00+00:00"
    assert alert.annotations["host_ip"] == "10.0.3.7"
    assert json.loads(alert.annotations["event_tags"])[0] == {
        "tag": "service",
        "value": "cartservice",
    }


def test_zabbix_recovery_closes_the_problem_at_recovery_time() -> None:
    [firing] = normalize_message(sample("generic-zabbix-problem.json"), generic=ZABBIX)
    [resolved] = normalize_message(sample("generic-zabbix-resolved.json"), generic=ZABBIX)
    assert_resolve_closes(firing, resolved)
    assert resolved.timestamp.isoformat() == "2024-12-06T10:27:00+00:00"


def test_detection_falls_back_to_the_generic_mapping_only_for_unknown_shapes() -> None:
    [alert] = normalize_message(sample("generic-zabbix-problem.json"), generic=ZABBIX)
    assert alert.source == "zabbix"
    [pd] = normalize_message(sample("pagerduty-trigger.json"), generic=ZABBIX)
    assert pd.source == "pagerduty"


def test_dotted_paths_list_indexes_and_batches() -> None:
    mapping = GenericMapping(
        items="events",
        service="data.host.name",
        name="check",
        severity="level",
        severity_map={"CRITICAL": "critical", "OK": "info"},
        status="state",
        status_map={"CRITICAL": "firing", "OK": "resolved"},
        time="ts",
        time_format="epoch_s",
        labels="tags",
        value="metrics[0]",
    )
    payload = {
        "events": [
            {
                "data": {"host": {"name": "db-1"}},
                "check": "disk",
                "level": "critical",
                "state": "CRITICAL",
                "ts": 1700000000,
                "tags": ["env:prod", "role=db", "pets"],
                "metrics": [97.5, 1],
            },
            {
                "data": {"host": {"name": "db-1"}},
                "check": "disk",
                "level": "OK",
                "state": "ok",
                "ts": "1700000600",
                "tags": ["env:prod", "role=db", "pets"],
                "metrics": ["12"],
            },
        ]
    }
    firing, resolved = normalize_message(json.dumps(payload).encode(), generic=mapping)
    assert (firing.service, firing.name, firing.severity) == ("db-1", "disk", Severity.critical)
    assert firing.labels == {"env": "prod", "role": "db", "pets": ""}
    assert (firing.value, resolved.value) == (97.5, 12.0)
    assert resolved.severity is Severity.info
    assert_resolve_closes(firing, resolved)
    assert firing.id != resolved.id  # no id path: a hash that includes the time
    assert normalize_message(json.dumps({"events": []}).encode(), generic=mapping) == []


def test_forced_generic_on_a_payload_of_a_builtin_format() -> None:
    mapping = GenericMapping(service="payload.component", name="payload.summary")
    [alert] = normalize_message(sample("pagerduty-trigger.json"), fmt="generic", generic=mapping)
    assert (alert.source, alert.service) == ("generic", "mysql")


@pytest.mark.parametrize(
    ("payload", "mapping", "needle"),
    [
        ({"x": 1}, {"service": "host", "name": "x"}, "found no service"),
        ({"host": "h"}, {"service": "host", "name": "check"}, "found no alert name"),
        (
            {"host": "h", "c": "x", "s": "WEIRD"},
            {"service": "host", "name": "c", "status": "s"},
            "status 'WEIRD'",
        ),
        (
            {"host": "h", "c": "x", "t": "soon"},
            {"service": "host", "name": "c", "time": "t"},
            "time",
        ),
        (
            {"host": "h", "c": "x"},
            {"service": "host", "name": "c", "items": "list"},
            "found no list",
        ),
        (
            {"host": "h", "c": "x", "l": 5},
            {"service": "host", "name": "c", "labels": "l"},
            "not an object",
        ),
        ({"host": "h", "c": 3}, {"service": "host", "name": "abs(host)"}, "failed on this payload"),
    ],
)
def test_mapping_errors_name_the_path(payload: Any, mapping: dict[str, str], needle: str) -> None:
    with pytest.raises(NormalizeError) as info:
        normalize_message(json.dumps(payload).encode(), generic=GenericMapping(**mapping))
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"service": "a", "name": ""}, "name must be set"),
        ({"service": "", "name": "a"}, "service must be set"),
        ({"service": "a.[", "name": "a"}, "service path 'a.[' is not valid"),
        ({"service": "a", "name": "a", "severity_map": {"x": "sev1"}}, "severity_map"),
        ({"service": "a", "name": "a", "status_map": {"x": "open"}}, "status_map"),
        ({"service": "a", "name": "a", "time_format": "iso"}, "time_format"),
        ({"service": "a", "name": "a", "default_severity": "high"}, "default_severity"),
    ],
)
def test_invalid_mappings_are_refused_in_one_line(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError) as info:
        GenericMapping(**kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)


KEY = st.sampled_from(["host", "name", "check", "tags", "level", "state", "ts", "data", "a", "0"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEY, inner, max_size=5),
    max_leaves=25,
)
SEGMENT = st.one_of(KEY, KEY.map(lambda k: f'"{k}"'), st.integers(-3, 3).map(lambda i: f"[{i}]"))
PATH = st.one_of(
    st.just(""),
    st.lists(SEGMENT, min_size=1, max_size=4).map(
        lambda parts: ".".join(p for p in parts).replace(".[", "[").lstrip("[").rstrip(".")
    ),
)


def _valid(path: str) -> str:
    try:
        GenericMapping(service=path or "a", name="a")
    except ValueError:
        return "a"
    return path


MAPPINGS = st.builds(
    GenericMapping,
    name=PATH.map(lambda p: _valid(p) or "name"),
    service=PATH.map(lambda p: _valid(p) or "host"),
    severity=PATH.map(_valid),
    status=PATH.map(_valid),
    time=PATH.map(_valid),
    id=PATH.map(_valid),
    labels=PATH.map(_valid),
    annotations=PATH.map(_valid),
    value=PATH.map(_valid),
    items=PATH.map(_valid),
    severity_map=st.dictionaries(st.text(max_size=4), st.sampled_from(["critical", "info"])),
    status_map=st.dictionaries(st.text(max_size=4), st.sampled_from(["firing", "resolved"])),
    time_format=st.sampled_from(["rfc3339", "epoch_s", "epoch_ms", "%Y-%m-%d"]),
)


@settings(max_examples=400, deadline=None)
@given(MAPPINGS, JSON)
def test_any_mapping_over_any_json_raises_only_normalize_errors(
    mapping: GenericMapping, payload: Any
) -> None:
    raw = json.dumps(payload, allow_nan=True).encode()
    with contextlib.suppress(NormalizeError):
        for alert in normalize_message(raw, generic=mapping, fmt="generic"):
            assert alert.service and alert.name and alert.source == "generic"


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["env", "team", "pod"]), st.text(min_size=1, max_size=5)),
    st.sampled_from(["PROBLEM", "problem", "Triggered"]),
    st.sampled_from(["OK", "Recovered", "resolved"]),
)
def test_any_resolve_with_the_same_labels_closes_its_alert(
    labels: dict[str, str], problem: str, ok: str
) -> None:
    mapping = GenericMapping(service="svc", name="check", status="state", labels="labels", time="t")
    fire = {"svc": "cartservice", "check": "c", "state": problem, "labels": labels, "t": 1e9}
    clear = {**fire, "state": ok, "t": 1e9 + 60}
    [firing] = normalize_message(json.dumps(fire).encode(), generic=mapping)
    [resolved] = normalize_message(json.dumps(clear).encode(), generic=mapping)
    assert_resolve_closes(firing, resolved)
