"""What every format adapter shares: the error, time and severity parsing, kept fields."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from pipeline.domain.schemas import Severity


class NormalizeError(ValueError):
    """The payload cannot be turned into canonical alerts; ``str(err)`` says why.

    ``error`` classifies it for the dead-letter headers and metrics: ``decode`` (not JSON or
    not text), ``format`` (not the format asked for, or an unknown format name), ``invalid``
    (the format's rules are broken)."""

    def __init__(self, reason: str, error: str = "invalid") -> None:
        super().__init__(reason)
        self.error = error


_FRACTION = re.compile(r"(\.\d{6})\d+")
ZERO_TIME_PREFIX = "0001-01-01"


def parse_time(value: Any, field: str) -> datetime:
    """Parse an RFC 3339 / ISO 8601 timestamp (nanoseconds and ``+0000`` offsets allowed,
    naive means UTC) or epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return epoch_time(float(value), field)
    if not isinstance(value, str) or not value:
        raise NormalizeError(f"{field} must be an RFC 3339 timestamp, got {value!r}")
    text = _FRACTION.sub(r"\1", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    elif text[-5:-4] in ("+", "-") and text[-4:].isdigit() and len(text) > 10:
        text = f"{text[:-2]}:{text[-2:]}"  # +0000 -> +00:00
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise NormalizeError(f"{field} is not an RFC 3339 timestamp: {value!r}") from None
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def epoch_time(seconds: float, field: str) -> datetime:
    """Seconds since the Unix epoch as an aware UTC datetime."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise NormalizeError(f"{field}: {seconds!r} is not a time in epoch seconds") from None


def now() -> datetime:
    """Arrival time, for formats whose events may carry no time of their own."""
    return datetime.now(tz=UTC)


SEVERITY_ALIASES: dict[str, Severity] = {
    "critical": Severity.critical,
    "crit": Severity.critical,
    "page": Severity.critical,
    "fatal": Severity.critical,
    "emergency": Severity.critical,
    "disaster": Severity.critical,
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
    "average": Severity.warning,
    "p3": Severity.warning,
    "info": Severity.info,
    "informational": Severity.info,
    "information": Severity.info,
    "low": Severity.info,
    "none": Severity.info,
    "p4": Severity.info,
    "p5": Severity.info,
}

SEVERITIES = ", ".join(s.value for s in Severity)


def parse_severity(value: Any, *, strict: bool, default: Severity = Severity.warning) -> Severity:
    """Map a severity word to the canonical scale; unknown words fail when ``strict``,
    else give ``default``."""
    if value is None or value == "":
        if strict:
            raise NormalizeError(f"severity is missing (one of {SEVERITIES})")
        return default
    sev = SEVERITY_ALIASES.get(str(value).strip().lower())
    if sev is None:
        if strict:
            raise NormalizeError(f"severity {value!r} is not one of {SEVERITIES}")
        return default
    return sev


_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder()


def decode_json(raw: bytes | str, what: str) -> Any:
    """Decode JSON text; a :class:`NormalizeError` (``decode``) saying what was not JSON."""
    try:
        return _json_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise NormalizeError(f"{what} is not valid JSON: {exc}", error="decode") from None


#: a kept value longer than this is cut (a payload can nest anything; alerts stay small)
MAX_KEPT_CHARS = 8192


def text(value: Any) -> str:
    """A JSON value as annotation text: strings as they are, anything else as compact JSON,
    at most :data:`MAX_KEPT_CHARS` characters."""
    if isinstance(value, str):
        out = value
    else:
        try:
            out = _json_encoder.encode(value).decode()
        except (TypeError, msgspec.EncodeError):
            out = str(value)
    if len(out) > MAX_KEPT_CHARS:
        return out[: MAX_KEPT_CHARS - 1] + "…"
    return out


def keep(
    annotations: dict[str, str],
    obj: Mapping[str, Any],
    known: Collection[str],
    prefix: str = "",
) -> None:
    """Keep every field of ``obj`` not in ``known`` (and not null or empty) as an annotation
    named ``prefix + key``; annotations already set win."""
    for key, value in obj.items():
        if value is None or value == "" or key in known:
            continue
        name = f"{prefix}{key}"
        if name not in annotations:
            annotations[name] = text(value)


def str_map(value: Any, field: str) -> dict[str, str]:
    """An object of labels or annotations; non-string values become text."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NormalizeError(f"{field} must be an object of strings")
    return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}


def optional_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return out if math.isfinite(out) else None


def require_str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise NormalizeError(f"{where}: field {key!r} is missing or not a non-empty string")
    return value


SERVICE_LABELS = ("service", "service_name", "app", "app_kubernetes_io_name", "job", "container")


def service_from_labels(labels: Mapping[str, Any]) -> str | None:
    """The first non-empty of the usual service labels (:data:`SERVICE_LABELS`)."""
    for key in SERVICE_LABELS:
        value = labels.get(key)
        if value:
            return str(value)
    return None


def stable_id(*parts: str) -> str:
    """A short hash of ``parts``, the same in every process."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()


def event_id(base: str, resolved: bool) -> str:
    """The id of one event of a series: a resolve must not reuse its firing's id (dedup
    drops an event whose id its series already recorded)."""
    return f"{base}-r" if resolved else base


_STATUS_PREFIX = re.compile(
    r"^\s*\[(?:firing(?::\s*\d+)?|resolved|triggered|recovered|re-triggered|ok|alerting|"
    r"alert|warn|no data)\]\s*",
    re.IGNORECASE,
)


def strip_status_prefix(summary: str) -> str:
    """``[FIRING:2] HighLatency`` -> ``HighLatency``: notification titles carry the state,
    which must not split an alert's identity between its firing and its resolve."""
    return _STATUS_PREFIX.sub("", summary, count=1)
