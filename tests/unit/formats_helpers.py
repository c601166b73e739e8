"""Helpers for the format tests: load samples, check that a resolve closes its firing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.domain.dedup import deduplicate
from pipeline.domain.fingerprint import fingerprint
from pipeline.domain.schemas import Alert, AlertStatus

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def sample_obj(name: str) -> Any:
    return json.loads(sample(name))


def binary_sample(name: str) -> tuple[bytes, dict[str, str]]:
    """A binary-mode CloudEvent sample: (message value, headers)."""
    obj = sample_obj(name)
    if "value" in obj:
        return json.dumps(obj["value"]).encode(), obj["headers"]
    return obj["body"].encode(), obj["headers"]


def assert_resolve_closes(firing: Alert, resolved: Alert) -> None:
    """``resolved`` ends ``firing``'s series: same identity (fingerprint, hence the same
    service for routing), and deduplication lets the state change through."""
    assert firing.status is AlertStatus.firing
    assert resolved.status is AlertStatus.resolved
    assert fingerprint(resolved) == fingerprint(firing)
    assert (resolved.source, resolved.service, resolved.name) == (
        firing.source,
        firing.service,
        firing.name,
    )
    assert resolved.id != firing.id
    fp = fingerprint(firing)
    result = deduplicate([firing, resolved], [fp, fp], {})
    assert result.passed == [firing, resolved]
    assert result.new_states[fp].startswith("resolved|")
