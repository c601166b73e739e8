"""Prometheus Alertmanager webhook (version 4), and the webhook shape Grafana shares with it.

One payload carries a group of alerts. An alert's identity is its labels (``commonLabels``
merged under its own), as in Alertmanager, so its resolve (same labels, ``status:
resolved``, ``endsAt`` set) closes it. Per-alert fields beyond labels, annotations and the
times (``generatorURL``, ``fingerprint``, ...) and the payload's own fields (``receiver``,
``externalURL``, ``groupKey``, ...) are kept as annotations of every alert.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.domain.formats.common import (
    ZERO_TIME_PREFIX,
    NormalizeError,
    keep,
    optional_float,
    parse_severity,
    parse_time,
    service_from_labels,
    stable_id,
    str_map,
)
from pipeline.domain.schemas import Alert, AlertStatus

#: payload fields that are used (or only restate the alerts) and so are not kept per alert
ENVELOPE_USED = frozenset(
    {
        "alerts",
        "status",
        "commonLabels",
        "commonAnnotations",
        "groupLabels",
        "version",
        "truncatedAlerts",
    }
)
ALERT_USED = frozenset(("status", "labels", "annotations", "startsAt", "endsAt"))

ValueOf = Callable[[dict[str, Any], dict[str, str]], float | None]


def _annotation_value(raw: dict[str, Any], annotations: dict[str, str]) -> float | None:
    return optional_float(annotations.get("value"))


def looks_like_webhook(obj: dict[str, Any]) -> bool:
    return "alerts" in obj and ("version" in obj or "groupKey" in obj or "receiver" in obj)


def webhook_alerts(
    payload: dict[str, Any],
    source: str,
    id_prefix: str,
    *,
    envelope_used: frozenset[str] = ENVELOPE_USED,
    alert_used: frozenset[str] = ALERT_USED,
    value_of: ValueOf = _annotation_value,
) -> list[Alert]:
    """The alerts of an Alertmanager-shaped webhook payload, from ``source``; alert ids are
    ``<id_prefix>-<fingerprint>-<startsAt epoch>`` (``-r`` added for a resolve)."""
    where_payload = f"{source} webhook"
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise NormalizeError(f"{where_payload}: 'alerts' must be a list")
    common = str_map(payload.get("commonLabels"), f"{where_payload}: commonLabels")
    common_ann = str_map(payload.get("commonAnnotations"), f"{where_payload}: commonAnnotations")
    out: list[Alert] = []
    for i, raw in enumerate(alerts):
        where = f"{where_payload} alert #{i}"
        if not isinstance(raw, dict):
            raise NormalizeError(f"{where}: not an object")
        labels = {**common, **str_map(raw.get("labels"), f"{where}: labels")}
        annotations = {**common_ann, **str_map(raw.get("annotations"), f"{where}: annotations")}
        keep(annotations, raw, alert_used)
        keep(annotations, payload, envelope_used)
        name = labels.get("alertname")
        if not name:
            raise NormalizeError(f"{where}: label 'alertname' is missing")
        service = service_from_labels(labels) or labels.get("instance") or "unknown"
        status = raw.get("status", payload.get("status", "firing"))
        if status not in ("firing", "resolved"):
            raise NormalizeError(f"{where}: status {status!r} is not 'firing' or 'resolved'")
        starts = parse_time(raw.get("startsAt"), f"{where}: startsAt")
        ends_raw = raw.get("endsAt")
        resolved = status == "resolved"
        if resolved and isinstance(ends_raw, str) and not ends_raw.startswith(ZERO_TIME_PREFIX):
            ts = parse_time(ends_raw, f"{where}: endsAt")
        else:
            ts = starts
        fingerprint = raw.get("fingerprint") or stable_id(
            *sorted(f"{k}={v}" for k, v in labels.items())
        )
        alert_id = f"{id_prefix}-{fingerprint}-{int(starts.timestamp())}"
        out.append(
            Alert(
                id=alert_id + ("-r" if resolved else ""),
                source=source,
                service=service,
                name=name,
                severity=parse_severity(labels.get("severity"), strict=False),
                status=AlertStatus(status),
                timestamp=ts,
                labels=labels,
                annotations=annotations,
                value=value_of(raw, annotations),
            )
        )
    return out


def from_alertmanager(payload: dict[str, Any]) -> list[Alert]:
    """An Alertmanager webhook (version 4): one payload carries many alerts."""
    return webhook_alerts(payload, "alertmanager", "am")
