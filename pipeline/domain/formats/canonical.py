"""The canonical alert (DESIGN.md): the format every other adapter produces."""

from __future__ import annotations

from typing import Any

from pipeline.domain.formats.common import (
    NormalizeError,
    keep,
    optional_float,
    parse_severity,
    parse_time,
    require_str,
    str_map,
)
from pipeline.domain.schemas import Alert, AlertStatus

FIELDS = frozenset(
    {
        "id",
        "source",
        "service",
        "name",
        "severity",
        "status",
        "timestamp",
        "labels",
        "annotations",
        "value",
    }
)
#: fields a payload needs to be taken for a canonical alert when detecting formats
REQUIRED = ("id", "service", "name")


def looks_canonical(obj: dict[str, Any]) -> bool:
    return "id" in obj and "service" in obj and "name" in obj


def from_canonical(obj: dict[str, Any], where: str | None = None) -> Alert:
    """A canonical alert object; fields beyond the canonical ones are kept as annotations."""
    where = where or f"canonical alert {obj.get('id', '?')!r}"
    status = obj.get("status", "firing")
    if status not in ("firing", "resolved"):
        raise NormalizeError(f"{where}: status {status!r} is not 'firing' or 'resolved'")
    raw_value = obj.get("value")
    value = optional_float(raw_value)
    if value is None and raw_value is not None:
        raise NormalizeError(f"{where}: value {raw_value!r} is not a number")
    annotations = str_map(obj.get("annotations"), f"{where}: annotations")
    if obj.keys() - FIELDS:
        keep(annotations, obj, FIELDS)
    return Alert(
        id=require_str(obj, "id", where),
        source=str(obj.get("source") or "unknown"),
        service=require_str(obj, "service", where),
        name=require_str(obj, "name", where),
        severity=parse_severity(obj.get("severity"), strict=True),
        status=AlertStatus(status),
        timestamp=parse_time(obj.get("timestamp"), f"{where}: timestamp"),
        labels=str_map(obj.get("labels"), f"{where}: labels"),
        annotations=annotations,
        value=value,
    )
