"""Deduplication of alert events by fingerprint state.

An alert series (one fingerprint) is either firing or resolved. Its recorded state is
``status|epoch|alert id`` of the last event that passed. An event is a duplicate when it
repeats the recorded status (a re-sent notification), is that very event (a redelivered
message), or is older than it (a stale redelivery); a newer state change passes.

The decision is pure: the caller supplies the recorded states (from Redis or memory) and
persists the returned new states only after the batch's work is saved, so a crash between
the two reprocesses the batch instead of losing it.
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
        current = state.get(fp) or known.get(fp)
        status = alert.status.value
        epoch = alert.epoch
        if current is not None and _is_duplicate(current, status, epoch, alert.id):
            result.duplicates += 1
            continue
        state[fp] = f"{status}|{epoch:.3f}|{alert.id}"
        result.passed.append(alert)
        result.fingerprints.append(fp)
    return result


def _is_duplicate(recorded: str, status: str, epoch: float, alert_id: str) -> bool:
    rec_status, _, rest = recorded.partition("|")
    rec_epoch, _, rec_id = rest.partition("|")
    if rec_status == status or rec_id == alert_id:
        return True
    try:
        # the record holds milliseconds, rounded: compare at that precision, or an event
        # less than a millisecond after the recorded one could look older than it
        return round(epoch, 3) < float(rec_epoch)
    except ValueError:
        return False
