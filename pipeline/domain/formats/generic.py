"""Any JSON alert payload, mapped onto canonical alerts by configuration (no code).

A :class:`GenericMapping` names, for each canonical field, a path into the payload. Paths
are JMESPath expressions (https://jmespath.org): a dotted path with list indexes such as
``data.host.name`` or ``tags[0]`` is one, and functions (``join(' ', [date, time])``),
multi-select objects (``{host: host.name, env: tags[0]}``) and ``||`` fallbacks are there
when a payload needs them. A field with an empty path is not mapped.

Each item is normalized on its own (``items`` selects a list of items in a batch payload;
paths are evaluated on an item). Labels are the alert's identity: map there only what stays
the same between a problem and its recovery, so the recovery closes the alert. Every
top-level field of the item is kept as an annotation (strings as they are, other values as
JSON text); mapped annotations win.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from pipeline.domain.formats.common import (
    SEVERITY_ALIASES,
    NormalizeError,
    epoch_time,
    event_id,
    keep,
    now,
    optional_float,
    parse_time,
    service_from_labels,
    stable_id,
    strip_status_prefix,
    text,
)
from pipeline.domain.schemas import Alert, AlertStatus, Severity

TIME_FORMATS = ("rfc3339", "epoch_s", "epoch_ms")
PATH_FIELDS = (
    "name",
    "service",
    "severity",
    "status",
    "time",
    "id",
    "labels",
    "annotations",
    "value",
    "items",
)
#: state words understood without a ``status_map`` entry (compared case-insensitively)
_FIRING_WORDS = "firing problem triggered trigger re-triggered alert alerting active open renotify"
_RESOLVED_WORDS = "resolved resolve ok recovered recovery closed cleared normal inactive"
STATUS_WORDS: dict[str, AlertStatus] = {
    **dict.fromkeys(_FIRING_WORDS.split(), AlertStatus.firing),
    **dict.fromkeys(_RESOLVED_WORDS.split(), AlertStatus.resolved),
}


@lru_cache(maxsize=512)
def compile_path(path: str) -> Any:
    """The compiled JMESPath expression (cached); ``ValueError`` with a one-line reason."""
    try:
        return jmespath.compile(path)
    except JMESPathError as exc:
        raise ValueError(_first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


@dataclasses.dataclass(frozen=True)
class GenericMapping:
    """How to read alerts from a JSON payload of no built-in format (docs/formats.md).

    Every path field holds a JMESPath expression evaluated on one item; ``name`` is
    required, and ``service`` unless the labels carry a service label."""

    #: the alert's name
    name: str
    #: the alert's service; when it finds nothing (or is empty), the first service-like
    #: label (service, service_name, app, app_kubernetes_io_name, job, container)
    service: str = ""
    #: the source's severity word, translated by ``severity_map``, then by the usual words
    #: (critical, high, warning, info, p1...), else ``default_severity``
    severity: str = ""
    #: the source's state word, translated by ``status_map``, then by the usual words
    #: (firing, problem, triggered / resolved, ok, recovered...); no value means firing
    status: str = ""
    #: event time, read as ``time_format`` says (no path: arrival time)
    time: str = ""
    #: the event's id (no path: a hash of the alert); a resolve gets ``-r`` added
    id: str = ""
    #: an object, a list of ``key:value`` / ``key=value`` strings or of ``{tag|key|name,
    #: value}`` objects, or a comma-separated ``key:value`` string: the identifying labels
    labels: str = ""
    #: like ``labels``: descriptive annotations
    annotations: str = ""
    #: a number (or numeric string) for the alert's value
    value: str = ""
    #: the list of items in a batch payload (no path: the payload is one item)
    items: str = ""
    #: the alerts' ``source`` (and id prefix)
    source: str = "generic"
    #: source severity word -> critical, error, warning or info (exact, then ignoring case)
    severity_map: dict[str, str] = dataclasses.field(default_factory=dict)
    #: source state word -> firing or resolved (exact, then ignoring case)
    status_map: dict[str, str] = dataclasses.field(default_factory=dict)
    default_severity: str = "warning"
    #: ``rfc3339`` (ISO 8601 text, or epoch seconds as a number), ``epoch_s``,
    #: ``epoch_ms``, or a ``strptime`` pattern such as ``%Y.%m.%d %H:%M:%S`` (naive = UTC)
    time_format: str = "rfc3339"

    def __post_init__(self) -> None:
        for name in PATH_FIELDS:
            path = getattr(self, name)
            if not isinstance(path, str):
                raise ValueError(f"{name} must be a path string (got {path!r})")
            if name == "name" and not path.strip():
                raise ValueError("name must be set to the path of the alert's name")
            if path.strip():
                try:
                    compile_path(path)
                except ValueError as exc:
                    raise ValueError(f"{name} path {path!r} is not valid: {exc}") from None
        if not self.service.strip() and not self.labels.strip():
            raise ValueError(
                "service must be set to the path of the alert's service (or labels to a path "
                "whose labels hold a service label)"
            )
        if not self.source:
            raise ValueError("source must not be empty")
        for name in ("severity_map", "status_map"):
            table = getattr(self, name)
            if not isinstance(table, dict) or not all(isinstance(k, str) for k in table):
                raise ValueError(f"{name} must be an object of source word: canonical word")
        severities = {s.value for s in Severity}
        if self.default_severity not in severities:
            raise ValueError(f"default_severity must be one of {', '.join(sorted(severities))}")
        for key, value in self.severity_map.items():
            if value not in severities:
                raise ValueError(
                    f"severity_map maps {key!r} to {value!r}, not one of "
                    f"{', '.join(sorted(severities))}"
                )
        for key, value in self.status_map.items():
            if value not in ("firing", "resolved"):
                raise ValueError(f"status_map maps {key!r} to {value!r}, not firing or resolved")
        fmt = self.time_format
        if fmt not in TIME_FORMATS and "%" not in fmt:
            raise ValueError(
                f"time_format {fmt!r} is not one of {', '.join(TIME_FORMATS)} nor a strptime "
                "pattern (with % directives)"
            )


def _search(mapping: GenericMapping, field: str, item: Any) -> Any:
    path = getattr(mapping, field)
    if not path.strip():
        return None
    try:
        return compile_path(path).search(item)
    except (JMESPathError, TypeError, ValueError) as exc:
        raise NormalizeError(
            f"generic mapping: {field} path {path!r} failed on this payload: {_first_line(exc)}"
        ) from None


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return text(value).strip()


def _pairs(value: Any, field: str, path: str) -> dict[str, str]:
    """Labels or annotations from an object, a list of tags, or a comma-separated string."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): text(v) for k, v in value.items() if v is not None}
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        out: dict[str, str] = {}
        for tag in value:
            if isinstance(tag, dict):
                key = tag.get("tag", tag.get("key", tag.get("name")))
                if key is not None:
                    out[text(key)] = text(tag.get("value", ""))
                continue
            if tag is None:
                continue
            tag_text = text(tag).strip()
            cut = min((i for i in (tag_text.find(":"), tag_text.find("=")) if i > 0), default=-1)
            if cut > 0:
                out[tag_text[:cut].strip()] = tag_text[cut + 1 :].strip()
            elif tag_text:
                out[tag_text] = ""
        return out
    raise NormalizeError(
        f"generic mapping: {field} path {path!r} gave {text(value)!r}, not an object, a list "
        "of tags or a comma-separated string"
    )


def _lookup(table: dict[str, str], key: str) -> str | None:
    if key in table:
        return table[key]
    folded = key.casefold()
    for k, v in table.items():
        if k.casefold() == folded:
            return v
    return None


def _severity(raw: Any, mapping: GenericMapping) -> Severity:
    key = _scalar(raw)
    default = Severity(mapping.default_severity)
    if not key:
        return default
    mapped = _lookup(mapping.severity_map, key)
    if mapped is not None:
        return Severity(mapped)
    return SEVERITY_ALIASES.get(key.lower(), default)


def _status(raw: Any, mapping: GenericMapping) -> AlertStatus:
    key = _scalar(raw)
    if not key:
        return AlertStatus.firing
    mapped = _lookup(mapping.status_map, key)
    if mapped is not None:
        return AlertStatus(mapped)
    status = STATUS_WORDS.get(key.lower())
    if status is None:
        raise NormalizeError(
            f"generic mapping: status {key!r} (path {mapping.status!r}) is not in status_map "
            "nor a known state word (firing, problem, triggered; resolved, ok, recovered); "
            "add it to status_map"
        )
    return status


def _time(raw: Any, mapping: GenericMapping) -> datetime:
    where = f"generic mapping: time (path {mapping.time!r})"
    if not mapping.time.strip():
        return now()
    if raw is None or raw == "":
        raise NormalizeError(f"{where} found nothing in this payload")
    fmt = mapping.time_format
    if fmt == "rfc3339":
        return parse_time(raw, where)
    if fmt in ("epoch_s", "epoch_ms"):
        seconds = optional_float(raw)
        if seconds is None:
            raise NormalizeError(f"{where}: {raw!r} is not a number of {fmt[6:]}")
        return epoch_time(seconds / 1000 if fmt == "epoch_ms" else seconds, where)
    try:
        ts = datetime.strptime(_scalar(raw), fmt)
    except ValueError:
        raise NormalizeError(f"{where}: {raw!r} does not match time_format {fmt!r}") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def from_generic(payload: Any, mapping: GenericMapping) -> list[Alert]:
    """The alerts of ``payload`` as ``mapping`` reads them (an empty ``items`` list: none)."""
    if mapping.items.strip():
        items = _search(mapping, "items", payload)
        if not isinstance(items, list):
            raise NormalizeError(
                f"generic mapping: items path {mapping.items!r} found no list in this payload"
            )
    else:
        items = [payload]
    return [_item(item, mapping, i) for i, item in enumerate(items)]


def _item(item: Any, mapping: GenericMapping, index: int) -> Alert:
    where = f"generic item #{index}"
    if not isinstance(item, dict):
        raise NormalizeError(f"{where}: not a JSON object")
    labels = _pairs(_search(mapping, "labels", item), "labels", mapping.labels)
    annotations = _pairs(_search(mapping, "annotations", item), "annotations", mapping.annotations)
    keep(annotations, item, ())
    service = _scalar(_search(mapping, "service", item)) or service_from_labels(labels)
    if not service:
        raise NormalizeError(
            f"{where}: service path {mapping.service!r} found no service, and no service "
            "label either"
        )
    name = strip_status_prefix(_scalar(_search(mapping, "name", item)))
    if not name:
        raise NormalizeError(f"{where}: name path {mapping.name!r} found no alert name")
    status = _status(_search(mapping, "status", item), mapping)
    ts = _time(_search(mapping, "time", item), mapping)
    raw_id = _scalar(_search(mapping, "id", item))
    base = raw_id or stable_id(
        service, name, *sorted(f"{k}={v}" for k, v in labels.items()), ts.isoformat()
    )
    return Alert(
        id=event_id(f"{mapping.source}-{base}", status is AlertStatus.resolved),
        source=mapping.source,
        service=service,
        name=name,
        severity=_severity(_search(mapping, "severity", item), mapping),
        status=status,
        timestamp=ts,
        labels=labels,
        annotations=annotations,
        value=optional_float(_search(mapping, "value", item)),
    )
