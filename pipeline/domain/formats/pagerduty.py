"""PagerDuty Events API v2: alert events (trigger / acknowledge / resolve) and change events.

**Alert events.** PagerDuty identifies an alert by ``dedup_key``; stormwatch also needs the
service (it routes and correlates by it), so identity here is the service
(``payload.component``, else a service-like key of ``custom_details``, else
``payload.source``), the name (``payload.class``, else ``payload.summary`` without a leading
state tag such as ``[FIRING:1]`` or ``[RESOLVED]``) and the label ``dedup_key``. A resolve
closes its trigger when it carries the trigger's payload, as Alertmanager's and Grafana's
PagerDuty notifiers send it; a bare resolve (``dedup_key`` alone, which PagerDuty itself
accepts) names no service and is refused with that reason. ``acknowledge`` is a firing event
of the series (a repeat, which deduplication drops while the alert fires).
``custom_details``, the other payload fields and ``client``, ``client_url``, ``links``,
``images`` are kept as annotations. ``routing_key`` is a credential and is not kept.

**Change events** (``/v2/change/enqueue``: ``routing_key`` and ``payload``, no
``event_action``) are context, not pages: each becomes an ``info`` alert with labels
``change: "true"`` and ``change_id`` (a hash of the event, so every change is its own
series), immediately followed by its resolve at the same time. Correlation sees the change
next to the alerts around it (it joins a related open incident, or opens one that cannot
page with the default gates and resolves after the quiet period), and it holds no incident
open.
"""

from __future__ import annotations

from typing import Any

from pipeline.domain.formats.common import (
    NormalizeError,
    keep,
    now,
    optional_float,
    parse_severity,
    parse_time,
    service_from_labels,
    stable_id,
    strip_status_prefix,
    text,
)
from pipeline.domain.schemas import Alert, AlertStatus, Severity

ACTIONS = ("trigger", "acknowledge", "resolve")
#: payload fields used for the alert itself (the others are kept as annotations)
PAYLOAD_USED = frozenset(("summary", "severity", "timestamp", "custom_details"))
#: event fields used, or never kept (routing_key is the integration's secret)
EVENT_USED = frozenset(("event_action", "dedup_key", "payload", "routing_key"))
MAX_NAME = 200


def looks_like_pagerduty(obj: dict[str, Any]) -> bool:
    return "event_action" in obj or "routing_key" in obj


def from_pagerduty(event: dict[str, Any]) -> list[Alert]:
    """A PagerDuty Events API v2 event: an alert event, or a change event (no
    ``event_action``)."""
    if "event_action" not in event:
        return from_change(event)
    return [from_alert_event(event)]


def _payload(event: dict[str, Any], where: str) -> dict[str, Any]:
    payload = event.get("payload")
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise NormalizeError(f"{where}: 'payload' must be an object")
    return payload


def _annotations(event: dict[str, Any], payload: dict[str, Any]) -> dict[str, str]:
    annotations: dict[str, str] = {}
    summary = payload.get("summary")
    if summary:
        annotations["summary"] = text(summary)
    keep(annotations, payload, PAYLOAD_USED)
    details = payload.get("custom_details")
    if isinstance(details, dict):
        keep(annotations, details, ())
    elif details is not None:
        annotations.setdefault("custom_details", text(details))
    keep(annotations, event, EVENT_USED)
    return annotations


def _details(payload: dict[str, Any]) -> dict[str, Any]:
    details = payload.get("custom_details")
    return details if isinstance(details, dict) else {}


def _str(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""


def from_alert_event(event: dict[str, Any]) -> Alert:
    """A trigger, acknowledge or resolve event."""
    action = event.get("event_action")
    where = "pagerduty event"
    if action not in ACTIONS:
        raise NormalizeError(f"{where}: event_action {action!r} is not one of {', '.join(ACTIONS)}")
    payload = _payload(event, where)
    dedup_key = event.get("dedup_key") or ""
    if not isinstance(dedup_key, str):
        raise NormalizeError(f"{where}: dedup_key must be a string")
    summary = _str(payload, "summary")
    source = _str(payload, "source")
    details = _details(payload)
    if action == "trigger":
        if not summary or not source:
            raise NormalizeError(f"{where}: a trigger needs payload.summary and payload.source")
        severity = parse_severity(payload.get("severity"), strict=True)
    else:
        if not dedup_key:
            raise NormalizeError(f"{where}: {action} needs a dedup_key")
        if not source and not _str(payload, "component"):
            raise NormalizeError(
                f"{where}: {action} of dedup_key {dedup_key!r} carries no payload.source or "
                "payload.component, so it names no service to match its trigger by; send the "
                "trigger's payload with it (as Alertmanager's and Grafana's PagerDuty "
                "notifiers do)"
            )
        severity = parse_severity(payload.get("severity"), strict=False)
    service = _str(payload, "component") or service_from_labels(details) or source
    name = _str(payload, "class") or strip_status_prefix(summary)[:MAX_NAME].strip() or dedup_key
    key = dedup_key or stable_id(service, _str(payload, "component"), name)
    ts = (
        parse_time(payload["timestamp"], f"{where}: payload.timestamp")
        if payload.get("timestamp")
        else now()
    )
    return Alert(
        id=f"pd-{key}-{int(ts.timestamp())}" + ("" if action == "trigger" else f"-{action}"),
        source="pagerduty",
        service=service,
        name=name,
        severity=severity,
        status=AlertStatus.resolved if action == "resolve" else AlertStatus.firing,
        timestamp=ts,
        labels={"dedup_key": key},
        annotations=_annotations(event, payload),
        value=optional_float(details.get("value")),
    )


def from_change(event: dict[str, Any]) -> list[Alert]:
    """A change event: an ``info`` alert labelled ``change`` and its immediate resolve."""
    where = "pagerduty change event"
    payload = _payload(event, where)
    summary = _str(payload, "summary")
    if not summary:
        raise NormalizeError(
            f"{where}: payload.summary is missing (an alert event needs event_action)"
        )
    details = _details(payload)
    service = service_from_labels(details) or _str(payload, "source") or "unknown"
    raw_ts = payload.get("timestamp")
    ts = parse_time(raw_ts, f"{where}: payload.timestamp") if raw_ts else now()
    key = stable_id(service, summary, text(raw_ts or ""), text(details))
    labels = {"change": "true", "change_id": key}
    annotations = _annotations(event, payload)
    common: dict[str, Any] = {
        "source": "pagerduty",
        "service": service,
        "name": summary[:MAX_NAME],
        "severity": Severity.info,
        "timestamp": ts,
        "labels": labels,
        "annotations": annotations,
    }
    firing = Alert(id=f"pdc-{key}", status=AlertStatus.firing, **common)
    common.update(labels=dict(labels), annotations=dict(annotations))
    return [firing, Alert(id=f"pdc-{key}-r", status=AlertStatus.resolved, **common)]
