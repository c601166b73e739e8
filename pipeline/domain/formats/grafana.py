"""Grafana alerting webhook (unified alerting, payload ``"version": "1"``).

Grafana's webhook is Alertmanager's template data plus Grafana fields: ``orgId``,
``title``, ``state`` and ``message`` on the payload, ``values``, ``valueString``,
``silenceURL``, ``dashboardURL``, ``panelURL``, ``imageURL`` on each alert. Alerts are read
as Alertmanager's are (identity = labels, so a resolve closes its firing). ``title``,
``state`` and ``message`` only restate the alerts, and ``embeddedImage`` is an inline
picture: they are not kept; every other field is.

``value``: the ``value`` annotation when it is a number, else the value of the first
expression in ``values`` by name (in Grafana's default rule layout, ``A`` query, ``B``
reduce, ``C`` threshold condition, that is the reduced query value); all values are kept
in the ``values`` annotation.
"""

from __future__ import annotations

from typing import Any

from pipeline.domain.formats.alertmanager import ALERT_USED, ENVELOPE_USED, webhook_alerts
from pipeline.domain.formats.common import optional_float
from pipeline.domain.schemas import Alert

GRAFANA_ENVELOPE_USED = ENVELOPE_USED | {"title", "state", "message"}
GRAFANA_ALERT_USED = ALERT_USED | {"embeddedImage"}


def looks_like_grafana(obj: dict[str, Any]) -> bool:
    return "alerts" in obj and (str(obj.get("version")) == "1" or "orgId" in obj)


def _value(raw: dict[str, Any], annotations: dict[str, str]) -> float | None:
    value = optional_float(annotations.get("value"))
    if value is not None:
        return value
    values = raw.get("values")
    if isinstance(values, dict):
        for key in sorted(values, key=str):
            value = optional_float(values[key])
            if value is not None:
                return value
    return None


def from_grafana(payload: dict[str, Any]) -> list[Alert]:
    """A Grafana alerting webhook: one payload carries many alerts."""
    return webhook_alerts(
        payload,
        "grafana",
        "gf",
        envelope_used=GRAFANA_ENVELOPE_USED,
        alert_used=GRAFANA_ALERT_USED,
        value_of=_value,
    )
