"""Pager-sized, plain-language explanations of groupings and root-cause rankings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pipeline.domain.rootcause import Ranked


def fmt_delay(seconds: float) -> str:
    s = max(0.0, seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def join_reason(relation: str, hops: int, via: str, service: str, delay: float) -> str:
    """Why an alert joined: ``"checkout -> payment (1 hop), 40 s after the first alert"``."""
    when = f"{fmt_delay(delay)} after the first alert"
    h = f"{hops} hop{'s' if hops != 1 else ''}"
    if relation == "same":
        return f"same service {service} as earlier alerts, {when}"
    if relation == "calls":
        return f"{service} -> {via} ({h}: {service} depends on {via}), {when}"
    if relation == "called-by":
        return f"{via} -> {service} ({h}: {via} depends on {service}), {when}"
    if relation == "shared-dependency":
        return f"{service} and an alerting service both depend on {via}, {when}"
    if relation == "blast-radius":
        return f"{service} is in the blast radius of {via} (a transitive caller), {when}"
    if relation == "shared-caller":
        return (
            f"{service} and an alerting service are both called by {via} (the topology may "
            f"miss a call between them), same burst, {when}"
        )
    if relation == "path":
        return (
            f"{service} is {h} from {via} ignoring call direction (the topology may miss a "
            f"call), same burst, {when}"
        )
    if relation == "label":
        return f"shares label {via} with earlier alerts ({service} is not in the topology), {when}"
    return f"{relation} {via}, {when}"


def incident_explanation(
    ranked: Sequence[Ranked],
    services: Sequence[str],
    opened_at: datetime,
    suppressed: Sequence[str],
    confirmed: str | None = None,
    merged_from: Sequence[str] = (),
) -> str:
    """The incident's summary: root cause and why, runner-up, suppression, grouping."""
    lines: list[str] = []
    if confirmed:
        lines.append(f"Root cause {confirmed}: confirmed by a responder.")
    elif ranked:
        top = ranked[0]
        lines.append(
            f"Root cause {top.service} (score {top.score:.2f}): " + "; ".join(top.reasons) + "."
        )
        if len(ranked) > 1:
            ru = ranked[1]
            lines.append(
                f"Runner-up {ru.service} ({ru.score:.2f}): " + "; ".join(ru.reasons[:2]) + "."
            )
    if suppressed:
        root = confirmed or (ranked[0].service if ranked else "?")
        parts = ", ".join(suppressed[:8]) + (
            f" and {len(suppressed) - 8} more" if len(suppressed) > 8 else ""
        )
        lines.append(
            f"Suppressed as symptoms of {root} (callers in its blast radius, traffic drops): "
            f"{parts}."
        )
    svc = ", ".join(services[:8]) + (f" and {len(services) - 8} more" if len(services) > 8 else "")
    lines.append(
        f"Alerts on {len(services)} service{'s' if len(services) != 1 else ''} ({svc}) "
        f"since {opened_at.strftime('%Y-%m-%d %H:%M:%SZ')}."
    )
    if merged_from:
        lines.append("Merged in: " + ", ".join(merged_from) + " (same root cause).")
    return "\n".join(lines)
