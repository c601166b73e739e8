"""Event-time alignment: alerts wait until every input partition still behind has passed
their event time, bounded, checkpointable; marks travel in routed batches."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from pipeline.app.routing import decode_batch, encode_batches, encode_marks
from pipeline.domain.alignment import EventTimeAligner, SourceMark
from pipeline.domain.schemas import Alert, AlertStatus, Severity

T0 = datetime(2026, 12, 6, tzinfo=UTC)


def _alert(i: int, t: float) -> Alert:
    return Alert(
        id=f"a{i}",
        source="test",
        service="svc",
        name="HighLatency",
        severity=Severity.warning,
        status=AlertStatus.firing,
        timestamp=T0 + timedelta(seconds=t),
    )


def _at(t: float) -> float:
    return (T0 + timedelta(seconds=t)).timestamp()


def test_alerts_wait_for_the_partition_that_is_behind() -> None:
    al = EventTimeAligner(max_held=1000)
    # partition 0 has routed up to t=100, partition 1 only up to t=10 and is still behind
    al.observe([SourceMark(0, _at(100), True), SourceMark(1, _at(10), True)])
    al.add([_alert(1, 5), _alert(2, 50), _alert(3, 100)], [1.0, 2.0, 3.0])
    alerts, arrivals = al.release()
    assert [a.id for a in alerts] == ["a1"] and arrivals == [1.0]
    al.observe([SourceMark(1, _at(60), True)])
    al.add([_alert(4, 20)], [4.0])
    assert [a.id for a in al.release()[0]] == ["a4", "a2"]
    # partition 1 caught up: nothing holds back any more
    al.observe([SourceMark(1, _at(70), False)])
    assert [a.id for a in al.release()[0]] == ["a3"]
    assert len(al) == 0 and al.forced == 0


def test_nothing_waits_when_every_partition_has_caught_up() -> None:
    al = EventTimeAligner(max_held=1000)
    al.observe([SourceMark(0, _at(5), False)])
    al.add([_alert(1, 50), _alert(2, 1)], [0.0, 0.0])
    assert [a.id for a in al.release()[0]] == ["a2", "a1"]
    assert al.watermark() == math.inf


def test_the_bound_lets_the_oldest_go_and_counts_them() -> None:
    al = EventTimeAligner(max_held=2)
    al.observe([SourceMark(0, _at(0), True)])  # a stalled partition
    al.add([_alert(i, float(i + 1)) for i in range(5)], [0.0] * 5)
    alerts, _ = al.release()
    assert [a.id for a in alerts] == ["a0", "a1", "a2"]
    assert len(al) == 2 and al.forced == 3


def test_zero_bound_turns_alignment_off() -> None:
    al = EventTimeAligner(max_held=0)
    al.observe([SourceMark(0, _at(0), True)])
    al.add([_alert(1, 9), _alert(2, 3)], [0.0, 0.0])
    assert [a.id for a in al.release()[0]] == ["a2", "a1"]


def test_snapshot_restores_waiting_alerts_and_marks() -> None:
    al = EventTimeAligner(max_held=100)
    al.observe([SourceMark(0, _at(10), True), SourceMark(3, _at(99), False)])
    al.add([_alert(1, 30), _alert(2, 20), _alert(3, 5)], [1.0, 2.0, 3.0])
    assert [a.id for a in al.release()[0]] == ["a3"]
    back = EventTimeAligner(max_held=100)
    back.restore(al.snapshot())
    assert back.marks == al.marks and len(back) == 2
    back.observe([SourceMark(0, _at(40), False)])
    alerts, arrivals = back.release()
    assert [a.id for a in alerts] == ["a2", "a1"] and arrivals == [2.0, 1.0]


@given(st.lists(st.floats(0, 1000), min_size=1, max_size=60), st.integers(0, 2**32 - 1))
def test_two_skewed_partitions_come_out_in_event_time_order(times: list[float], seed: int) -> None:
    """Each partition in order, chunks interleaved at random, each partition reporting from
    its first chunk on (as ingest does): the output is the merged order, and every alert
    comes out exactly once."""
    rng = random.Random(seed)
    parts: list[list[tuple[int, float]]] = [[], []]
    for i, t in enumerate(sorted(times)):
        parts[rng.randrange(2)].append((i, t))
    al = EventTimeAligner(max_held=10_000)
    pos = [0, 0]
    out: list[Alert] = []
    while pos[0] < len(parts[0]) or pos[1] < len(parts[1]):
        p = rng.randrange(2) if all(pos) else pos.index(0)
        if pos[p] >= len(parts[p]):
            p = 1 - p
        chunk = parts[p][pos[p] : pos[p] + rng.randint(1, 5)]
        pos[p] += len(chunk)
        al.add([_alert(i, t) for i, t in chunk], [0.0] * len(chunk))
        al.observe(
            [
                SourceMark(q, _at(parts[q][pos[q] - 1][1]), pos[q] < len(parts[q]))
                for q in (0, 1)
                if pos[q] > 0
            ]
        )
        if all(pos) or not all(parts):
            out.extend(al.release()[0])
    epochs = [a.epoch for a in out]
    assert epochs == sorted(epochs)
    assert sorted(a.id for a in out) == sorted(f"a{i}" for i in range(len(times)))


def test_marks_travel_in_a_batch_without_alerts() -> None:
    marks = [SourceMark(2, 123.5, True)]
    batch = decode_batch(encode_marks(marks))
    assert batch.alerts == [] and batch.marks == marks
    # batches from senders without marks still decode
    [old] = encode_batches([_alert(1, 0)], [0.0])
    assert decode_batch(old).marks == []


def test_a_limit_from_the_other_domains_holds_alerts_and_progress_reports_it() -> None:
    al = EventTimeAligner(max_held=1000)
    al.add([_alert(1, 10), _alert(2, 50), _alert(3, 90)], [0.0] * 3)
    assert al.progress() == _at(10)  # nothing released yet: the oldest held
    alerts, _ = al.release(limit=_at(60))  # another domain is at 30 s, 30 s skew allowed
    assert [a.id for a in alerts] == ["a1", "a2"]
    assert al.progress() == _at(90) and al.forced == 0
    assert [a.id for a in al.release()[0]] == ["a3"]
    assert al.progress() == math.inf  # nothing held, no source behind: holds nobody back


def test_progress_while_a_source_is_behind_is_the_watermark_not_the_paced_alerts() -> None:
    """Two domains pacing each other must not advance one skew per round trip: alerts held
    only for the other domain do not count as this partition's progress."""
    al = EventTimeAligner(max_held=1000)
    al.observe([SourceMark(0, _at(100), True)])
    al.add([_alert(1, 10), _alert(2, 50), _alert(3, 150)], [0.0] * 3)
    assert [a.id for a in al.release(limit=_at(20))[0]] == ["a1"]  # a2 waits for the pace
    assert al.progress() == _at(100)
    al.observe([SourceMark(0, _at(40), True)])
    assert al.progress() == _at(40)


def test_held_alerts_go_on_when_nothing_came_for_a_while() -> None:
    al = EventTimeAligner(max_held=1000)
    al.observe([SourceMark(0, _at(0), True)])  # behind, and then silent
    al.add([_alert(2, 20), _alert(1, 10)], [0.0, 0.0])
    assert al.release() == ([], [])
    assert al.release_stale(quiet_s=1.0) == ([], [])
    alerts, _ = al.release_stale(quiet_s=al.quiet_after_s)
    assert [a.id for a in alerts] == ["a1", "a2"] and len(al) == 0 and al.forced == 2


def test_a_restored_buffer_releases_in_the_same_order_even_for_equal_times() -> None:
    al = EventTimeAligner(max_held=1000)
    al.observe([SourceMark(0, _at(0), True)])
    al.add([_alert(3, 20), _alert(1, 10), _alert(2, 20)], [1.0, 2.0, 3.0])
    first = al.snapshot()
    assert al.snapshot() == first  # encoded once, written again unchanged
    again = EventTimeAligner(max_held=1000)
    again.restore(first)
    assert again.watermark() == _at(0)
    alerts, arrivals = again.release(limit=math.inf)
    assert alerts == [] and len(again) == 3
    again.observe([SourceMark(0, _at(30), True)])
    alerts, arrivals = again.release()
    assert [a.id for a in alerts] == ["a1", "a3", "a2"] and arrivals == [2.0, 1.0, 3.0]


def test_a_buffer_written_before_arrival_orders_were_kept_still_restores() -> None:
    old = msgspec.msgpack.encode([[[0, _at(0), True]], [_alert(1, 10), _alert(2, 20)], [1.0, 2.0]])
    al = EventTimeAligner(max_held=1000)
    al.restore(old)
    assert len(al) == 2 and al.watermark() == _at(0)


def test_a_release_bound_leaves_the_rest_ready_and_reports_it_as_progress() -> None:
    al = EventTimeAligner(max_held=1000, max_release=3)
    al.observe([SourceMark(0, _at(100), True), SourceMark(1, _at(50), True)])
    al.add([_alert(i, t) for i, t in enumerate([40, 10, 30, 20, 45, 60])], [])
    first, _ = al.release()
    assert [a.id for a in first] == ["a1", "a3", "a2"]  # the 3 oldest the watermark passed
    assert al.ready()
    assert al.progress() == _at(40)  # the oldest ready alert, below the watermark (50)
    second, _ = al.release()
    assert [a.id for a in second] == ["a0", "a4"]
    assert not al.ready()  # what is left (t=60) waits for the watermark
    assert al.progress() == _at(50)


def test_a_release_bound_is_ignored_when_alignment_is_off() -> None:
    al = EventTimeAligner(max_held=0, max_release=2)
    al.add([_alert(i, t) for i, t in enumerate([3, 1, 2, 4])], [])
    out, _ = al.release()
    assert len(out) == 4 and not al.ready()


def test_paced_means_only_the_other_domains_hold_the_oldest_alert_back() -> None:
    al = EventTimeAligner(max_held=1000)
    al.observe([SourceMark(0, _at(100), True)])
    al.add([_alert(i, t) for i, t in enumerate([10, 60, 150])], [])
    out, _ = al.release(limit=_at(30))  # the other domains are at 30 - skew
    assert [a.id for a in out] == ["a0"] and al.paced()  # t=60 passed by the watermark (100)
    out, _ = al.release(limit=_at(80))
    assert [a.id for a in out] == ["a1"] and not al.paced()  # t=150 waits for the watermark
    assert not EventTimeAligner(max_held=1000).paced()  # nothing held
