"""CloudEvents 1.0 in structured and binary content mode.

**Structured mode**: the message is the event as JSON (``specversion``, ``id``, ``source``,
``type``, ... and ``data`` or ``data_base64``); a batch (``application/cloudevents-batch+json``)
is a JSON list of them. **Binary mode**: the attributes are message headers, ``ce_<name>``
on Kafka (Kafka protocol binding) or ``ce-<name>`` over HTTP (HTTP binding, values
percent-decoded), both spellings accepted on either transport; ``content-type`` is the
data's media type and the message value / request body is the data.

Mapping: ``id`` -> id, ``source`` -> source, ``subject`` -> service, ``type`` -> name,
``time`` -> timestamp (arrival time when absent); the extension attributes ``severity``,
``status``, ``service``, ``name`` and ``value`` set those fields; ``data`` (a JSON object)
is a canonical alert or part of one and wins over the attributes. Text data becomes the
``summary`` annotation. ``data`` that is itself an Alertmanager, Grafana or PagerDuty
payload is read as that format. Every other attribute (``datacontenttype``, ``dataschema``,
extensions such as ``traceparent``) is kept as an annotation ``ce_<name>``.

Identity is the canonical one (source, subject/service, type/name, ``data.labels``), so a
resolve is an event with the same source, subject, type and labels, ``status: resolved``
(in ``data`` or as the extension attribute) and, as the specification requires, its own
``id``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from pipeline.domain.formats.canonical import from_canonical
from pipeline.domain.formats.common import NormalizeError, decode_json, now, text
from pipeline.domain.schemas import Alert

#: a reader for data that is another format's payload (None: not one)
Nested = Callable[[dict[str, Any]], list[Alert] | None]

REQUIRED = ("id", "source", "type")
#: attributes mapped onto canonical fields (the rest are kept as ``ce_`` annotations)
MAPPED = frozenset(("id", "source", "specversion", "type", "subject", "time", "data"))
#: extension attributes that set canonical fields
FIELD_EXTENSIONS = ("severity", "status", "service", "name", "value")
BATCH_MEDIA = "application/cloudevents-batch"
STRUCTURED_MEDIA = "application/cloudevents"


def looks_like_structured(obj: dict[str, Any]) -> bool:
    return "specversion" in obj


def binary_attributes(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The event attributes carried by message headers (keys already lower case), or None
    when the headers hold no binary-mode event (no ``ce_specversion``/``ce-specversion``,
    or a ``content-type`` saying the body is a structured event)."""
    if "ce_specversion" not in headers and "ce-specversion" not in headers:
        return None
    content_type = headers.get("content-type", "")
    if content_type.lower().startswith(STRUCTURED_MEDIA):
        return None
    attrs: dict[str, str] = {}
    for key, value in headers.items():
        if key.startswith(("ce_", "ce-")) and len(key) > 3:
            attrs[key[3:]] = unquote(value) if key[2] == "-" else value
    if content_type:
        attrs["datacontenttype"] = content_type
    return attrs


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    return not media or media in ("application/json", "text/json") or media.endswith("+json")


def decode_data(body: bytes, content_type: str, where: str) -> Any:
    """The event data from its bytes, by media type: JSON, text, or an error."""
    if not body:
        return None
    media = _media(content_type)
    if _is_json(media):
        return decode_json(body, f"{where}: data")
    if media.startswith("text/"):
        try:
            return body.decode()
        except UnicodeDecodeError:
            raise NormalizeError(f"{where}: text data is not UTF-8", error="decode") from None
    raise NormalizeError(
        f"{where}: data of content type {content_type!r} is neither JSON nor text",
        error="decode",
    )


def from_binary(attrs: dict[str, str], body: bytes, nested: Nested | None = None) -> list[Alert]:
    """A binary-mode event: attributes from headers, ``body`` the data."""
    where = f"cloudevent {attrs.get('id', '?')!r}"
    data = decode_data(body, attrs.get("datacontenttype", ""), where)
    return _alerts(attrs, data, where, nested)


def from_structured(event: dict[str, Any], nested: Nested | None = None) -> list[Alert]:
    """A structured-mode event (the decoded JSON object)."""
    where = f"cloudevent {event.get('id', '?')!r}"
    data = event.get("data")
    if "data_base64" in event and data is None:
        raw = event["data_base64"]
        try:
            body = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
        except (binascii.Error, ValueError):
            raise NormalizeError(f"{where}: data_base64 is not base64", error="decode") from None
        data = decode_data(body, text(event.get("datacontenttype") or ""), where)
    attrs = {k: v for k, v in event.items() if k not in ("data", "data_base64")}
    return _alerts(attrs, data, where, nested)


def _alerts(attrs: Mapping[str, Any], data: Any, where: str, nested: Nested | None) -> list[Alert]:
    if str(attrs.get("specversion")) != "1.0":
        raise NormalizeError(f"{where}: specversion must be '1.0'")
    for name in REQUIRED:
        value = attrs.get(name)
        if not isinstance(value, str) or not value:
            raise NormalizeError(f"{where}: attribute {name!r} is missing or empty")
    kept = {
        f"ce_{k}": text(v)
        for k, v in attrs.items()
        if k not in MAPPED and k not in FIELD_EXTENSIONS and v is not None and v != ""
    }
    if isinstance(data, dict) and nested is not None:
        alerts = nested(data)
        if alerts is not None:
            for alert in alerts:
                for key, value in kept.items():
                    alert.annotations.setdefault(key, value)
            return alerts
    if data is None:
        data = {}
    elif isinstance(data, str):
        data = {"annotations": {"summary": data}}
    elif not isinstance(data, dict):
        raise NormalizeError(
            f"{where}: data must be a JSON object (a canonical alert or part of one) or text"
        )
    merged: dict[str, Any] = {
        "id": attrs["id"],
        "source": attrs["source"],
        "service": attrs.get("subject"),
        "name": attrs["type"],
        "timestamp": attrs.get("time") or now().isoformat(),
    }
    for name in FIELD_EXTENSIONS:
        if attrs.get(name) not in (None, ""):
            merged[name] = attrs[name]
    merged.update((k, v) for k, v in data.items() if v is not None)
    if not merged.get("service"):
        raise NormalizeError(f"{where}: no service: set the subject attribute or data.service")
    alert = from_canonical(merged, where)
    for key, value in kept.items():
        alert.annotations.setdefault(key, value)
    return [alert]
