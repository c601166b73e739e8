"""Routing onto the by-domain topic: stable partitions and size-bounded batch messages."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.app.routing import (
    MAX_ALERTS_PER_MESSAGE,
    MAX_MESSAGE_BYTES,
    decode_batch,
    domain_partition,
    encode_batches,
)
from pipeline.domain.schemas import Alert, AlertStatus, Severity

T = datetime(2026, 11, 24, tzinfo=UTC)


def _alert(i: int, note: int = 0) -> Alert:
    return Alert(
        id=f"a{i}",
        source="test",
        service=f"s{i % 7}",
        name="HighLatency",
        severity=Severity.warning,
        status=AlertStatus.firing,
        timestamp=T,
        labels={f"label{k}": f"value-{i}-{k}" for k in range(12)},
        annotations={"description": "x" * note},
    )


def test_partition_is_stable_and_in_range() -> None:
    assert domain_partition("online-boutique", 4) == domain_partition("online-boutique", 4)
    assert {domain_partition(f"d{i}", 4) for i in range(100)} == {0, 1, 2, 3}


def test_batches_round_trip_in_order_and_respect_the_count_limit() -> None:
    alerts = [_alert(i) for i in range(2 * MAX_ALERTS_PER_MESSAGE + 5)]
    arrivals = [float(i) for i in range(len(alerts))]
    messages = encode_batches(alerts, arrivals)
    assert len(messages) == 3
    decoded = [decode_batch(m) for m in messages]
    assert [a for b in decoded for a in b.alerts] == alerts
    assert [t for b in decoded for t in b.arrivals] == arrivals


def test_large_alerts_are_split_below_the_byte_limit() -> None:
    alerts = [_alert(i, note=1500) for i in range(1000)]  # ~2 KB each: ~2 MB in one chunk
    messages = encode_batches(alerts, [0.0] * len(alerts))
    assert len(messages) > 1
    assert all(len(m) <= MAX_MESSAGE_BYTES for m in messages)
    assert [a.id for m in messages for a in decode_batch(m).alerts] == [a.id for a in alerts]


def test_one_oversized_alert_travels_alone() -> None:
    messages = encode_batches([_alert(1, note=2000), _alert(2)], [0.0, 0.0], max_bytes=1000)
    assert [len(decode_batch(m).alerts) for m in messages] == [1, 1]
