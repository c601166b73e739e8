"""The gateway's one seam to the format parsers of :mod:`pipeline.domain.normalize`.

``normalize_message`` (every format, HTTP headers for binary CloudEvents, the generic
mapping) is being added to the domain in parallel. Until it lands, :func:`parse_alerts`
parses the formats today's adapters know (canonical, Alertmanager, PagerDuty Events v2,
structured CloudEvents); once it has, this module reduces to calling it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from pipeline.domain import normalize as formats
from pipeline.domain.schemas import Alert


def parse_alerts(
    raw: bytes, headers: Mapping[str, str], fmt: str, generic: Any = None
) -> list[Alert]:
    """Canonical alerts of one request body in format ``fmt``; raises ``NormalizeError``."""
    normalize_message = getattr(formats, "normalize_message", None)
    if normalize_message is not None:
        alerts: list[Alert] = normalize_message(raw, headers=headers, fmt=fmt, generic=generic)
        return alerts
    # fallback until normalize_message lands: today's adapters, one JSON object or a list
    adapters: dict[str, Any] = {
        "canonical": formats.from_canonical,
        "alertmanager": formats.from_alertmanager,
        "pagerduty": formats.from_pagerduty,
        "cloudevents": formats.from_cloudevent,
    }
    adapter = adapters.get(fmt)
    if adapter is None or any(name.startswith("ce-") for name in headers):
        what = "binary-mode cloudevents" if adapter else fmt
        raise formats.NormalizeError(f"{what} is not supported by this build", "unsupported")
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise formats.NormalizeError(f"not valid JSON: {exc}", "decode") from None
    if fmt == "canonical" and isinstance(obj, dict) and isinstance(obj.get("alerts"), list):
        obj = obj["alerts"]
    items = obj if isinstance(obj, list) and fmt != "alertmanager" else [obj]
    out: list[Alert] = []
    for item in items:
        if not isinstance(item, dict):
            raise formats.NormalizeError(
                f"expected a JSON object, got {type(item).__name__}", "shape"
            )
        try:
            parsed = adapter(item)
        except formats.NormalizeError:
            raise
        except (ValueError, TypeError) as exc:
            raise formats.NormalizeError(str(exc)) from None
        out.extend(parsed if isinstance(parsed, list) else [parsed])
    return out
