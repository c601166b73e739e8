"""Turn raw messages of every supported format into canonical alerts: the one entry point.

:func:`normalize_message` is what the Kafka ingest agent and the HTTP gateway call. The
format is forced by ``fmt`` (one of :data:`FORMATS`), else by the ``stormwatch-format``
header, else detected: binary-mode CloudEvents by their ``ce_``/``ce-`` headers, then by the
payload's shape (see :func:`detect`). The adapters are in :mod:`pipeline.domain.formats`.
Any problem raises :class:`NormalizeError` with a reason a person can act on; the caller
routes the original bytes (and headers) to the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pipeline.domain.formats.alertmanager import from_alertmanager, looks_like_webhook
from pipeline.domain.formats.canonical import from_canonical, looks_canonical
from pipeline.domain.formats.cloudevents import (
    binary_attributes,
    from_binary,
    from_structured,
    looks_like_structured,
)
from pipeline.domain.formats.common import (
    SERVICE_LABELS,
    NormalizeError,
    decode_json,
    parse_severity,
    parse_time,
)
from pipeline.domain.formats.generic import GenericMapping, from_generic
from pipeline.domain.formats.grafana import from_grafana, looks_like_grafana
from pipeline.domain.formats.pagerduty import from_pagerduty, looks_like_pagerduty
from pipeline.domain.schemas import Alert

__all__ = [
    "FORMATS",
    "FORMAT_HEADER",
    "SERVICE_LABELS",
    "GenericMapping",
    "NormalizeError",
    "Normalizer",
    "detect",
    "normalize",
    "normalize_message",
    "normalize_obj",
    "parse_severity",
    "parse_time",
]

FORMATS = ("canonical", "alertmanager", "pagerduty", "cloudevents", "grafana", "generic")
#: a message header naming the format (for producers that know it, e.g. the HTTP gateway)
FORMAT_HEADER = "stormwatch-format"


def _nested(generic: GenericMapping | None) -> Callable[[dict[str, Any]], list[Alert] | None]:
    """Reads CloudEvents data that is itself an Alertmanager, Grafana or PagerDuty payload."""

    def read(data: dict[str, Any]) -> list[Alert] | None:
        fmt = detect(data, None)
        if fmt in ("alertmanager", "grafana", "pagerduty"):
            return _READERS[fmt](data, generic)
        return None

    return read


def _cloudevents(obj: dict[str, Any], generic: GenericMapping | None) -> list[Alert]:
    return from_structured(obj, _nested(generic))


def _generic(obj: Any, generic: GenericMapping | None) -> list[Alert]:
    if generic is None:
        raise NormalizeError(
            "format 'generic' needs a generic mapping: set STORMWATCH_FORMATS__GENERIC__* or "
            "STORMWATCH_FORMATS__GENERIC_FILE",
            error="format",
        )
    return from_generic(obj, generic)


def _canonical_batch(obj: dict[str, Any], generic: GenericMapping | None) -> list[Alert]:
    """``{"alerts": [...]}`` around canonical alerts (or payloads of any format)."""
    return [a for item in obj["alerts"] for a in _one(item, generic)]


_READERS: dict[str, Callable[[Any, GenericMapping | None], list[Alert]]] = {
    "canonical": lambda obj, _g: [from_canonical(obj)],
    "alertmanager": lambda obj, _g: from_alertmanager(obj),
    "grafana": lambda obj, _g: from_grafana(obj),
    "pagerduty": lambda obj, _g: from_pagerduty(obj),
    "cloudevents": _cloudevents,
    "generic": _generic,
    "canonical-batch": _canonical_batch,
}

#: which shape each format must have when it is forced (generic takes any JSON)
_SHAPES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "canonical": lambda obj: True,
    "alertmanager": lambda obj: isinstance(obj.get("alerts"), list),
    "grafana": lambda obj: isinstance(obj.get("alerts"), list),
    "pagerduty": lambda obj: "event_action" in obj or "payload" in obj,
    "cloudevents": looks_like_structured,
}
_SHAPE_NEEDS = {
    "alertmanager": "an object with an 'alerts' list",
    "grafana": "an object with an 'alerts' list",
    "pagerduty": "an object with 'event_action' (alert event) or 'payload' (change event)",
    "cloudevents": "a structured event (an object with 'specversion') or ce_/ce- headers",
}


def detect(obj: dict[str, Any], generic: GenericMapping | None) -> str:
    """The format of a decoded JSON object, by shape, in this order: CloudEvents
    (``specversion``), Grafana (``alerts`` and ``"version": "1"`` or ``orgId``), Alertmanager
    (``alerts`` and ``version``/``groupKey``/``receiver``), PagerDuty (``event_action`` or
    ``routing_key``), canonical (``id``, ``service`` and ``name``); otherwise the generic
    mapping when one is configured, else an ``alerts`` list of canonical alerts, else
    canonical (whose error then names what is missing)."""
    if looks_like_structured(obj):
        return "cloudevents"
    if looks_like_grafana(obj):
        return "grafana"
    if looks_like_webhook(obj):
        return "alertmanager"
    if looks_like_pagerduty(obj):
        return "pagerduty"
    if looks_canonical(obj):
        return "canonical"
    if generic is not None:
        return "generic"
    if isinstance(obj.get("alerts"), list):
        return "canonical-batch"
    return "canonical"


def _one(obj: Any, generic: GenericMapping | None) -> list[Alert]:
    if not isinstance(obj, dict):
        raise NormalizeError(f"expected a JSON object, got {type(obj).__name__}")
    return _READERS[detect(obj, generic)](obj, generic)


def _forced(obj: Any, fmt: str, generic: GenericMapping | None) -> list[Alert]:
    if fmt == "generic":
        return _generic(obj, generic)
    items = obj if isinstance(obj, list) else [obj]
    if not items:
        raise NormalizeError("empty batch")
    out: list[Alert] = []
    for item in items:
        if not isinstance(item, dict) or not _SHAPES[fmt](item):
            need = _SHAPE_NEEDS.get(fmt, "a JSON object")
            got = f"keys {sorted(item)[:8]}" if isinstance(item, dict) else type(item).__name__
            raise NormalizeError(f"not a {fmt} payload: expected {need}, got {got}", "format")
        if fmt == "canonical" and not looks_canonical(item) and "alerts" in item:
            out.extend(_canonical_items(item["alerts"]))
        else:
            out.extend(_READERS[fmt](item, generic))
    return out


def _canonical_items(items: Any) -> list[Alert]:
    if not isinstance(items, list) or not all(isinstance(a, dict) for a in items):
        raise NormalizeError("canonical batch: 'alerts' must be a list of alert objects")
    return [from_canonical(a) for a in items]


def normalize_obj(obj: Any, generic: GenericMapping | None = None) -> list[Alert]:
    """Normalize an already-decoded payload: one alert/event, a batch list, or a webhook;
    the format of each is detected."""
    if isinstance(obj, list):
        if not obj:
            raise NormalizeError("empty batch")
        return [a for item in obj for a in _one(item, generic)]
    return _one(obj, generic)


def _lower_headers(headers: Mapping[str, str | bytes | None]) -> dict[str, str]:
    """The headers this module reads (``ce_*``, ``ce-*``, ``content-type``, the format
    header) by lower-case name, as UTF-8 text; other headers are not looked at."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        name = str(key).lower()
        if value is None or not (
            name.startswith(("ce_", "ce-")) or name in ("content-type", FORMAT_HEADER)
        ):
            continue
        if isinstance(value, bytes | bytearray):
            try:
                value = bytes(value).decode()
            except UnicodeDecodeError:
                raise NormalizeError(f"header {key!r} is not UTF-8 text", error="decode") from None
        out[name] = str(value)
    return out


def normalize_message(
    raw: bytes,
    headers: Mapping[str, str | bytes] | None = None,
    fmt: str | None = None,
    generic: GenericMapping | None = None,
) -> list[Alert]:
    """Decode and normalize one message (a Kafka record's value and headers, or an HTTP
    request's body and headers).

    ``headers`` are matched case-insensitively. ``fmt`` forces a format (one of
    :data:`FORMATS`; a payload not of that format is a ``NormalizeError`` saying so); None
    takes the ``stormwatch-format`` header, else detects the format. ``generic`` is the
    configured generic mapping (used for ``fmt="generic"`` and, when detecting, for
    payloads of no built-in format)."""
    try:
        hdrs = _lower_headers(headers) if headers else {}
        if fmt is None and FORMAT_HEADER in hdrs:
            fmt = hdrs[FORMAT_HEADER].strip().lower()
        if fmt is not None and fmt not in FORMATS:
            raise NormalizeError(
                f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}", error="format"
            )
        if hdrs and fmt in (None, "cloudevents"):
            attrs = binary_attributes(hdrs)
            if attrs is not None:
                return from_binary(attrs, raw, _nested(generic))
        if not raw:
            raise NormalizeError("empty message", error="decode")
        obj = decode_json(raw, "message")
        if fmt is None:
            return normalize_obj(obj, generic)
        return _forced(obj, fmt, generic)
    except NormalizeError:
        raise
    except (ValueError, TypeError) as exc:
        raise NormalizeError(str(exc) or type(exc).__name__) from None


def normalize(raw: bytes) -> list[Alert]:
    """Decode and normalize one Kafka message value (the format detected by shape)."""
    return normalize_message(raw)


Normalizer = Callable[[bytes], list[Alert]]
