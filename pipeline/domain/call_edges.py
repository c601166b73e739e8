"""Calls named by the alerts themselves: service-graph edges the topology file may miss.

Alerts on call-level metrics name both ends of a call: a label pair such as
``caller``/``callee`` or ``source_service``/``destination_service``, or a label value ending
in ``caller->callee`` (e.g. ``metric: "CallLatencyP50(s):checkoutservice->cartservice"``, as
Prometheus rules over client-side histograms name their series). A call is taken only when
one of its ends is the alert's own service, so an unrelated label that happens to contain an
arrow names no call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: label pairs (caller key, callee key) naming a call
CALL_LABEL_PAIRS: tuple[tuple[str, str], ...] = (
    ("caller", "callee"),
    ("source_service", "destination_service"),
    ("src_service", "dst_service"),
    ("client", "server"),
)

_ARROW = re.compile(r"([A-Za-z0-9][\w.-]*)\s*->\s*([A-Za-z0-9][\w.-]*)\s*$")


def call_edge(service: str, labels: Mapping[str, str] | None) -> tuple[str, str] | None:
    """The call (caller, callee) an alert on ``service`` with ``labels`` names, or None."""
    if not labels:
        return None
    for ck, dk in CALL_LABEL_PAIRS:
        a = labels.get(ck)
        b = labels.get(dk)
        if a and b and a != b and service in (a, b):
            return a, b
    for v in labels.values():
        if "->" in v:
            m = _ARROW.search(v)
            if m is not None:
                a, b = m.group(1), m.group(2)
                if a != b and service in (a, b):
                    return a, b
    return None
