"""Alertmanager (v4) and Grafana (v1) webhooks: real-shaped samples, kept fields, resolves."""

from __future__ import annotations

import json

from pipeline.domain.normalize import normalize_message
from pipeline.domain.schemas import Severity
from tests.unit.formats_helpers import assert_resolve_closes, sample, sample_obj


def test_real_alertmanager_webhook_keeps_every_field() -> None:
    payload = sample_obj("alertmanager-firing.json")
    [alert] = normalize_message(sample("alertmanager-firing.json"))
    raw = payload["alerts"][0]
    assert alert.source == "alertmanager"
    assert alert.name == raw["labels"]["alertname"]
    assert alert.labels == {**payload["commonLabels"], **raw["labels"]}
    assert alert.annotations["fingerprint"] == raw["fingerprint"]
    assert alert.annotations["generatorURL"] == raw["generatorURL"]
    assert alert.annotations["receiver"] == payload["receiver"]
    assert alert.annotations["externalURL"] == payload["externalURL"]
    assert alert.annotations["groupKey"] == payload["groupKey"]
    for key, value in raw["annotations"].items():
        assert alert.annotations[key] == value


def test_real_alertmanager_resolve_closes_its_alert() -> None:
    [firing] = normalize_message(sample("alertmanager-firing.json"))
    [resolved] = normalize_message(sample("alertmanager-resolved.json"))
    assert_resolve_closes(firing, resolved)
    raw = sample_obj("alertmanager-resolved.json")["alerts"][0]
    assert resolved.timestamp.isoformat()[:19] == raw["endsAt"][:19]


def test_unknown_alertmanager_fields_are_kept() -> None:
    payload = sample_obj("alertmanager-firing.json")
    payload["tenant"] = {"id": 7}
    payload["alerts"][0]["origin"] = "vmalert"
    [alert] = normalize_message(json.dumps(payload).encode())
    assert alert.annotations["tenant"] == '{"id":7}'
    assert alert.annotations["origin"] == "vmalert"


def test_grafana_sample_from_the_docs() -> None:
    alerts = normalize_message(sample("grafana-firing.json"))
    assert [a.name for a in alerts] == ["High memory usage", "High CPU usage"]
    memory = alerts[0]
    assert memory.source == "grafana"
    assert memory.id.startswith("gf-c6eadffa33fcdf37-")
    assert memory.labels == {"alertname": "High memory usage", "team": "blue", "zone": "us-1"}
    assert memory.service == "unknown"  # no service-like label: still handled, never dropped
    assert memory.severity is Severity.warning
    assert memory.value == 44.23943737541908  # values["B"], the reduced query
    assert memory.annotations["values"] == '{"B":44.23943737541908,"C":1}'
    assert memory.annotations["silenceURL"].startswith("https://play.grafana.org/alerting/silence")
    assert memory.annotations["orgId"] == "1"
    assert memory.annotations["runbook_url"] == "https://myrunbook.com/runbook/1234"
    for dropped in ("message", "title", "state", "dashboardURL", "panelURL"):
        assert dropped not in memory.annotations
    assert memory.timestamp.isoformat() == "2021-10-12T07:51:03.157076+00:00"


def test_grafana_resolve_closes_its_alert() -> None:
    firing = normalize_message(sample("grafana-firing.json"))[0]
    [resolved] = normalize_message(sample("grafana-resolved.json"))
    assert_resolve_closes(firing, resolved)
    assert resolved.timestamp.isoformat() == "2021-10-12T08:06:03.157076+00:00"
    assert resolved.value == 12.5


def test_grafana_service_label_and_value_annotation() -> None:
    payload = sample_obj("grafana-firing.json")
    alert = payload["alerts"][0]
    alert["labels"]["service"] = "cartservice"
    alert["labels"]["severity"] = "critical"
    alert["annotations"]["value"] = "97"
    alert["embeddedImage"] = "iVBORw0KGgo="
    first = normalize_message(json.dumps(payload).encode())[0]
    assert (first.service, first.severity, first.value) == ("cartservice", Severity.critical, 97)
    assert "embeddedImage" not in first.annotations
