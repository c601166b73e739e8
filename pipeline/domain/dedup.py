"""Deduplication of alert events by fingerprint state.

An alert series (one fingerprint) is either firing or resolved. An event that repeats the
state already recorded (a re-sent notification, a redelivered message) is a duplicate; a
state change passes. The decision is pure: the caller supplies the recorded states (from
Redis or memory) and persists the returned new states only after the batch's work is saved,
so a crash between the two reprocesses the batch instead of losing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.domain.fingerprint import fingerprint
from pipeline.domain.schemas import Alert


@dataclass
class DedupResult:
    """Alerts that passed, in order; the states to persist; how many were dropped."""

    passed: list[Alert] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    new_states: dict[str, str] = field(default_factory=dict)
    duplicates: int = 0


def fingerprints_of(alerts: list[Alert]) -> list[str]:
    return [fingerprint(a) for a in alerts]


def deduplicate(
    alerts: list[Alert], fps: list[str], known: Mapping[str, str | None]
) -> DedupResult:
    """Drop events whose status equals their series' current status (``known`` + this batch)."""
    result = DedupResult()
    state = result.new_states
    for alert, fp in zip(alerts, fps, strict=True):
        current = state.get(fp, known.get(fp))
        status = alert.status.value
        if current == status:
            result.duplicates += 1
            continue
        state[fp] = status
        result.passed.append(alert)
        result.fingerprints.append(fp)
    return result
