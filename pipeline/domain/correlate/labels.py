"""Common labels: the label pairs every alert of one service in an incident carried.

Kept per (incident, service) as the intersection of its alerts' labels. The first alert of
a service sets the candidates, bounded: at most :data:`MAX_PAIRS` pairs (by key order),
keys of at most :data:`MAX_KEY` and values of at most :data:`MAX_VALUE` characters (longer
pairs are left out, never cut: a cut value would name something else), :data:`MAX_CHARS`
characters in all. Later alerts only take pairs away, so the set stays within the bound and
an incident event stays within its size bound. Incident events carry the set of their root
cause (``Incident.common_labels``); runbooks match on it (docs/remediation.md).
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_PAIRS = 16
MAX_KEY = 64
MAX_VALUE = 128
MAX_CHARS = 1024


def bounded(labels: Mapping[str, str]) -> dict[str, str]:
    """The pairs of ``labels`` within the bounds (module docstring), by key order."""
    out: dict[str, str] = {}
    chars = 0
    for key in sorted(labels):
        value = labels[key]
        if len(key) > MAX_KEY or len(value) > MAX_VALUE:
            continue
        chars += len(key) + len(value)
        if chars > MAX_CHARS or len(out) == MAX_PAIRS:
            break
        out[key] = value
    return out


def intersect(common: dict[str, str], labels: Mapping[str, str]) -> dict[str, str]:
    """The pairs of ``common`` that ``labels`` has too: ``common`` itself when it keeps them
    all, else a new dict (sets handed out are never changed in place)."""
    if all(labels.get(k) == v for k, v in common.items()):
        return common
    return {k: v for k, v in common.items() if labels.get(k) == v}


def add_alert(
    per_service: dict[str, dict[str, str]], service: str, labels: Mapping[str, str]
) -> None:
    """An alert of ``service`` carrying ``labels`` joined the incident."""
    common = per_service.get(service)
    if common is None:
        per_service[service] = bounded(labels)
    elif common:
        per_service[service] = intersect(common, labels)


def absorb(target: dict[str, dict[str, str]], src: Mapping[str, dict[str, str]]) -> None:
    """``target`` gains the alerts behind ``src`` (an incident merged into another)."""
    for service, common in src.items():
        mine = target.get(service)
        target[service] = common if mine is None else intersect(mine, common)


def of_members(
    root: str | None, members: list[tuple[str | None, list[str], dict[str, str]]]
) -> dict[str, str]:
    """The common labels of ``root`` over several incidents, each given as (its root cause,
    its services, its common labels): intersected over those with alerts of ``root``; empty
    when one of them has another root cause (its set is about that one, not ``root``)."""
    sets = []
    for inc_root, services, common in members:
        if root is None or root not in services:
            continue
        if inc_root != root:
            return {}
        sets.append(common)
    if not sets:
        return {}
    out = sets[0]
    for s in sets[1:]:
        out = intersect(out, s)
    return dict(out)
