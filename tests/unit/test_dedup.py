from __future__ import annotations

from datetime import UTC, datetime

from pipeline.domain.dedup import deduplicate, fingerprints_of
from pipeline.domain.schemas import Alert, AlertStatus, Severity


def make(aid: str, status: str = "firing", pod: str = "p1", minute: int = 0) -> Alert:
    return Alert(
        id=aid,
        source="prom",
        service="svc",
        name="HighLatency",
        severity=Severity.warning,
        status=AlertStatus(status),
        timestamp=datetime(2024, 1, 1, 0, minute, tzinfo=UTC),
        labels={"pod": pod},
    )


def test_repeats_dropped_state_changes_pass() -> None:
    alerts = [
        make("1"),
        make("2", minute=1),
        make("3", "resolved", minute=2),
        make("4", minute=3),
        make("5", pod="p2"),
    ]
    result = deduplicate(alerts, fingerprints_of(alerts), {})
    assert [a.id for a in result.passed] == ["1", "3", "4", "5"]
    assert result.duplicates == 1


def test_known_state_from_store_is_respected() -> None:
    alerts = [make("1")]
    fps = fingerprints_of(alerts)
    result = deduplicate(alerts, fps, {fps[0]: "firing|0|0"})
    assert result.passed == [] and result.duplicates == 1
    assert result.new_states == {}


def test_redelivered_batch_is_idempotent() -> None:
    alerts = [make("1"), make("2", "resolved", minute=5)]
    fps = fingerprints_of(alerts)
    first = deduplicate(alerts, fps, {})
    again = deduplicate(alerts, fps, first.new_states)
    assert len(first.passed) == 2
    assert again.passed == [] and again.duplicates == 2


def test_flap_after_resolve_passes() -> None:
    alerts = [make("1"), make("2", "resolved", minute=5), make("3", minute=9)]
    result = deduplicate(alerts, fingerprints_of(alerts), {})
    assert [a.id for a in result.passed] == ["1", "2", "3"]


def test_a_resolve_within_the_same_millisecond_passes() -> None:
    # the record rounds to milliseconds: 0.2346 is recorded as 0.235, and a resolve at
    # 0.2348 must not look older than it
    base = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    fire = make("f")
    fire.timestamp = datetime.fromtimestamp(base + 0.2346, tz=UTC)
    clear = make("c", "resolved")
    clear.timestamp = datetime.fromtimestamp(base + 0.2348, tz=UTC)
    result = deduplicate([fire, clear], fingerprints_of([fire, clear]), {})
    assert [a.id for a in result.passed] == ["f", "c"]
