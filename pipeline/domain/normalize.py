"""Turn raw payloads of every supported format into canonical alerts.

One adapter per source format; :func:`normalize` sniffs the format from the payload's shape.
Any problem raises :class:`NormalizeError` with a reason a person can act on; the caller
routes the original bytes to the dead-letter topic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from pipeline.domain.schemas import Alert, AlertStatus, Severity

_json_decoder = msgspec.json.Decoder()


class NormalizeError(ValueError):
    """The payload cannot be turned into canonical alerts; ``str(err)`` says why."""

    def __init__(self, reason: str, error: str = "invalid") -> None:
        super().__init__(reason)
        self.error = error


_FRACTION = re.compile(r"(\.\d{6})\d+")
_ZERO_TIME_PREFIX = "0001-01-01"


def parse_time(value: Any, field: str) -> datetime:
    """Parse an RFC 3339 timestamp (nanoseconds allowed, naive means UTC) or epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if not isinstance(value, str) or not value:
        raise NormalizeError(f"{field} must be an RFC 3339 timestamp, got {value!r}")
    text = _FRACTION.sub(r"\1", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise NormalizeError(f"{field} is not an RFC 3339 timestamp: {value!r}") from None
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


_SEVERITY_ALIASES: dict[str, Severity] = {
    "critical": Severity.critical,
    "crit": Severity.critical,
    "page": Severity.critical,
    "fatal": Severity.critical,
    "emergency": Severity.critical,
    "p1": Severity.critical,
    "high": Severity.error,
    "error": Severity.error,
    "err": Severity.error,
    "major": Severity.error,
    "p2": Severity.error,
    "warning": Severity.warning,
    "warn": Severity.warning,
    "minor": Severity.warning,
    "medium": Severity.warning,
    "p3": Severity.warning,
    "info": Severity.info,
    "informational": Severity.info,
    "low": Severity.info,
    "none": Severity.info,
    "p4": Severity.info,
    "p5": Severity.info,
}


def parse_severity(value: Any, *, strict: bool) -> Severity:
    """Map a severity word to the canonical scale; unknown words fail when ``strict``."""
    if value is None or value == "":
        if strict:
            raise NormalizeError("severity is missing (one of critical, error, warning, info)")
        return Severity.warning
    sev = _SEVERITY_ALIASES.get(str(value).strip().lower())
    if sev is None:
        if strict:
            raise NormalizeError(f"severity {value!r} is not one of critical, error, warning, info")
        return Severity.warning
    return sev


def _str_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NormalizeError(f"{field} must be an object of strings")
    return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}


def _optional_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _require_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise NormalizeError(f"{where}: field {key!r} is missing or not a non-empty string")
    return value


SERVICE_LABELS = ("service", "service_name", "app", "app_kubernetes_io_name", "job", "container")


def _service_from_labels(labels: dict[str, str]) -> str | None:
    for key in SERVICE_LABELS:
        if labels.get(key):
            return labels[key]
    return None


def _stable_id(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()


# --- canonical JSON ------------------------------------------------------------------------


def from_canonical(obj: dict[str, Any]) -> Alert:
    """A canonical alert object (DESIGN.md); extra fields are ignored."""
    where = f"canonical alert {obj.get('id', '?')!r}"
    status = obj.get("status", "firing")
    if status not in ("firing", "resolved"):
        raise NormalizeError(f"{where}: status {status!r} is not 'firing' or 'resolved'")
    value = obj.get("value")
    if value is not None and _optional_float(value) is None:
        raise NormalizeError(f"{where}: value {value!r} is not a number")
    return Alert(
        id=_require_str(obj, "id", where),
        source=obj.get("source") or "unknown",
        service=_require_str(obj, "service", where),
        name=_require_str(obj, "name", where),
        severity=parse_severity(obj.get("severity"), strict=True),
        status=AlertStatus(status),
        timestamp=parse_time(obj.get("timestamp"), f"{where}: timestamp"),
        labels=_str_map(obj.get("labels"), f"{where}: labels"),
        annotations=_str_map(obj.get("annotations"), f"{where}: annotations"),
        value=_optional_float(value),
    )


# --- Alertmanager webhook v4 ---------------------------------------------------------------


def from_alertmanager(payload: dict[str, Any]) -> list[Alert]:
    """An Alertmanager webhook (version 4): one payload carries many alerts."""
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise NormalizeError("alertmanager webhook: 'alerts' must be a list")
    common = _str_map(payload.get("commonLabels"), "alertmanager webhook: commonLabels")
    out: list[Alert] = []
    for i, raw in enumerate(alerts):
        where = f"alertmanager webhook alert #{i}"
        if not isinstance(raw, dict):
            raise NormalizeError(f"{where}: not an object")
        labels = {**common, **_str_map(raw.get("labels"), f"{where}: labels")}
        annotations = _str_map(raw.get("annotations"), f"{where}: annotations")
        name = labels.get("alertname")
        if not name:
            raise NormalizeError(f"{where}: label 'alertname' is missing")
        service = _service_from_labels(labels) or labels.get("instance") or "unknown"
        status = raw.get("status", payload.get("status", "firing"))
        if status not in ("firing", "resolved"):
            raise NormalizeError(f"{where}: status {status!r} is not 'firing' or 'resolved'")
        starts = parse_time(raw.get("startsAt"), f"{where}: startsAt")
        ends_raw = raw.get("endsAt")
        resolved = status == "resolved"
        if resolved and isinstance(ends_raw, str) and not ends_raw.startswith(_ZERO_TIME_PREFIX):
            ts = parse_time(ends_raw, f"{where}: endsAt")
        else:
            ts = starts
        fingerprint = raw.get("fingerprint") or _stable_id(
            *sorted(f"{k}={v}" for k, v in labels.items())
        )
        alert_id = f"am-{fingerprint}-{int(starts.timestamp())}" + ("-r" if resolved else "")
        out.append(
            Alert(
                id=alert_id,
                source="alertmanager",
                service=service,
                name=name,
                severity=parse_severity(labels.get("severity"), strict=False),
                status=AlertStatus(status),
                timestamp=ts,
                labels=labels,
                annotations=annotations,
                value=_optional_float(annotations.get("value")),
            )
        )
    return out


# --- PagerDuty Events API v2 ---------------------------------------------------------------


def from_pagerduty(event: dict[str, Any]) -> Alert:
    """A PagerDuty Events API v2 event (trigger / acknowledge / resolve)."""
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        raise NormalizeError(f"pagerduty event: event_action {action!r} is not trigger/resolve")
    payload = event.get("payload") or {}
    if not isinstance(payload, dict):
        raise NormalizeError("pagerduty event: 'payload' must be an object")
    dedup_key = event.get("dedup_key") or ""
    details = payload.get("custom_details") or {}
    labels = _str_map(details if isinstance(details, dict) else {}, "pagerduty custom_details")
    if payload.get("class"):
        labels.setdefault("class", str(payload["class"]))
    if payload.get("group"):
        labels.setdefault("group", str(payload["group"]))
    if action == "trigger":
        summary = _require_str(payload, "summary", "pagerduty event payload")
        source = _require_str(payload, "source", "pagerduty event payload")
        service = payload.get("component") or _service_from_labels(labels) or source
        name = str(payload.get("class") or summary)[:200]
        severity = parse_severity(payload.get("severity"), strict=True)
        ts = (
            parse_time(payload["timestamp"], "pagerduty timestamp")
            if payload.get("timestamp")
            else datetime.now(tz=UTC)
        )
    else:
        if not dedup_key:
            raise NormalizeError("pagerduty event: resolve/acknowledge needs a dedup_key")
        summary = str(payload.get("summary", ""))
        service = payload.get("component") or labels.get("service") or dedup_key
        name = str(payload.get("class") or labels.get("alertname") or dedup_key)
        severity = parse_severity(payload.get("severity"), strict=False)
        ts = (
            parse_time(payload["timestamp"], "pagerduty timestamp")
            if payload.get("timestamp")
            else datetime.now(tz=UTC)
        )
    key = dedup_key or _stable_id(str(service), name, summary)
    labels.setdefault("dedup_key", key)
    return Alert(
        id=f"pd-{key}-{int(ts.timestamp())}" + ("" if action == "trigger" else f"-{action}"),
        source="pagerduty",
        service=str(service),
        name=name,
        severity=severity,
        status=AlertStatus.firing if action != "resolve" else AlertStatus.resolved,
        timestamp=ts,
        labels=labels,
        annotations={"summary": summary} if summary else {},
        value=_optional_float(labels.get("value")),
    )


# --- CloudEvents 1.0 (structured mode) -----------------------------------------------------


def from_cloudevent(event: dict[str, Any]) -> Alert:
    """A structured-mode CloudEvent whose ``data`` is a canonical alert or a partial one."""
    where = f"cloudevent {event.get('id', '?')!r}"
    if str(event.get("specversion")) != "1.0":
        raise NormalizeError(f"{where}: specversion must be '1.0'")
    data = event.get("data")
    if not isinstance(data, dict):
        raise NormalizeError(f"{where}: 'data' must be a JSON object")
    merged: dict[str, Any] = {
        "id": event.get("id"),
        "source": event.get("source"),
        "service": event.get("subject"),
        "name": event.get("type"),
        "timestamp": event.get("time"),
        **{k: v for k, v in data.items() if v is not None},
    }
    return from_canonical(merged)


# --- dispatch ------------------------------------------------------------------------------


def _one(obj: Any) -> list[Alert]:
    if not isinstance(obj, dict):
        raise NormalizeError(f"expected a JSON object, got {type(obj).__name__}")
    if "alerts" in obj and ("version" in obj or "groupKey" in obj or "receiver" in obj):
        return from_alertmanager(obj)
    if "specversion" in obj:
        return [from_cloudevent(obj)]
    if "event_action" in obj or "routing_key" in obj:
        return [from_pagerduty(obj)]
    if "alerts" in obj and isinstance(obj["alerts"], list):
        return [a for item in obj["alerts"] for a in _one(item)]
    return [from_canonical(obj)]


def normalize_obj(obj: Any) -> list[Alert]:
    """Normalize an already-decoded payload: one alert/event, a batch list, or a webhook."""
    if isinstance(obj, list):
        if not obj:
            raise NormalizeError("empty batch")
        return [a for item in obj for a in _one(item)]
    return _one(obj)


def normalize(raw: bytes) -> list[Alert]:
    """Decode and normalize one Kafka message value."""
    if not raw:
        raise NormalizeError("empty message", error="decode")
    try:
        obj = _json_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise NormalizeError(f"not valid JSON: {exc}", error="decode") from None
    try:
        return normalize_obj(obj)
    except NormalizeError:
        raise
    except (ValueError, TypeError) as exc:
        raise NormalizeError(str(exc)) from None


Normalizer = Callable[[bytes], list[Alert]]
