"""The gateway's endpoints (one per format) and what each accepts: pure request checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    path: str
    #: the ``fmt`` the body is parsed as
    fmt: str
    #: PagerDuty-compatible: PagerDuty-shaped answers, the routing key may carry the token
    pagerduty: bool = False


ENDPOINTS = (
    Endpoint("/v1/alerts/alertmanager", "alertmanager"),
    Endpoint("/v1/alerts/pagerduty", "pagerduty", pagerduty=True),
    Endpoint("/v2/enqueue", "pagerduty", pagerduty=True),
    Endpoint("/v2/change/enqueue", "pagerduty", pagerduty=True),
    Endpoint("/v1/alerts/cloudevents", "cloudevents"),
    Endpoint("/v1/alerts/grafana", "grafana"),
    Endpoint("/v1/alerts/generic", "generic"),
    Endpoint("/v1/alerts/canonical", "canonical"),
)
FORMATS = tuple(dict.fromkeys(e.fmt for e in ENDPOINTS))
#: every path the metrics name; anything else counts as "other" (bounded label values)
KNOWN_PATHS = frozenset({e.path for e in ENDPOINTS} | {"/healthz", "/metrics"})


def path_label(path: str) -> str:
    return path if path in KNOWN_PATHS else "other"


def media_type(headers: Mapping[str, str]) -> str:
    """The Content-Type without parameters, lower case ('' when missing)."""
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def is_binary_cloudevent(headers: Mapping[str, str]) -> bool:
    """CloudEvents HTTP binary mode: the attributes travel as ``ce-`` headers."""
    return "ce-specversion" in headers


def content_problem(endpoint: Endpoint, headers: Mapping[str, str]) -> str | None:
    """Why the request's Content-Type or Content-Encoding is not accepted (415), or None.

    JSON bodies: ``application/json`` or any ``application/*+json`` (structured
    ``application/cloudevents+json`` and batched ``application/cloudevents-batch+json``);
    a binary-mode CloudEvent's data may be of any type (its parser reads JSON or text).
    """
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        return f"Content-Encoding {encoding!r} is not supported; send the body uncompressed"
    media = media_type(headers)
    if _is_json(media) or (endpoint.fmt == "cloudevents" and is_binary_cloudevent(headers)):
        return None
    if not media:
        return "Content-Type is missing; send application/json"
    return f"Content-Type {media!r} is not accepted; send application/json"


def parser_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a parser may read: Content-Type and the CloudEvents ``ce-`` attributes
    (never Authorization or anything else a sender did not mean as alert data)."""
    out = {k: v for k, v in headers.items() if k.startswith("ce-")}
    if "content-type" in headers:
        out["content-type"] = headers["content-type"]
    return out
