"""Ingest pauses for correlation (its own partitions counted exactly, others estimated), and
holds raw partitions that run ahead in event time."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from pipeline.app import source_marks
from pipeline.app.backpressure import IngestPause, PauseSet, RouteCredit
from pipeline.app.metrics import Metrics
from pipeline.app.source_marks import ALIGN_DRIFT_S, ALIGN_STUCK_S, SourceMarks
from pipeline.domain.schemas import Alert, AlertStatus, Severity


def test_only_owned_partitions_count_with_hysteresis() -> None:
    credit = RouteCredit(max_ahead=100)
    credit.own([0, 1])
    credit.routed(2, 1000)  # another process correlates partition 2
    assert not credit.too_far_ahead() and credit.caught_up()
    credit.routed(0, 80)
    credit.routed(1, 50)
    assert credit.total == 130 and credit.too_far_ahead()
    credit.correlated(1, 50)
    assert not credit.too_far_ahead() and not credit.caught_up()  # 80: hold until half
    credit.correlated(0, 500)  # never below zero
    assert credit.pending == {0: 0, 1: 0} and credit.caught_up()


def test_giving_up_partitions_releases_their_alerts_and_zero_is_no_limit() -> None:
    credit = RouteCredit(max_ahead=10)
    credit.own([3])
    credit.routed(3, 50)
    assert credit.too_far_ahead()
    credit.disown([3])
    assert credit.caught_up()
    unlimited = RouteCredit(max_ahead=0)
    unlimited.own([0])
    unlimited.routed(0, 10**6)
    assert not unlimited.too_far_ahead() and unlimited.caught_up()


class _Consumer:
    """Records Faust's buffer-pressure calls."""

    def __init__(self, hw: dict[int, int] | None = None) -> None:
        self.full: set[object] = set()
        self.hw = hw or {}

    def on_buffer_full(self, tp: object) -> None:  # idempotent, as Faust's
        self.full.add(tp)

    def on_buffer_drop(self, tp: object) -> None:
        self.full.discard(tp)

    def assignment(self) -> set[TP]:
        return {TP("raw", p) for p in self.hw}

    def highwater(self, tp: TP) -> int | None:
        return self.hw.get(tp.partition)


def test_a_partition_fetches_again_only_when_every_reason_is_gone() -> None:
    consumer = _Consumer()
    pauses = PauseSet(lambda: consumer)
    pauses.hold("backlog", ["a", "b"])
    pauses.hold("align", ["b"])
    assert consumer.full == {"a", "b"}
    pauses.hold("backlog", [])
    assert consumer.full == {"b"}
    consumer.on_buffer_drop("b")  # Faust's own buffer pressure dropped: b would run free
    pauses.hold("align", ["b"])
    assert consumer.full == {"b"}  # held again
    pauses.hold("align", [])
    assert consumer.full == set() and pauses.reasons == {}


def test_only_alerts_still_on_the_topic_pause_ingest() -> None:
    """Held alerts wait for the raw partitions' progress: pausing those for them would stall
    the watermark that releases them."""
    consumer = _Consumer(hw={0: 100, 1: 100})
    credit = RouteCredit(max_ahead=1000)
    credit.own([0])
    pause = IngestPause(lambda: consumer, "raw", credit, Metrics(CollectorRegistry()))
    credit.routed(0, 5000)
    credit.received(0, 4800)  # held for alignment: only 200 still on the topic
    pause.pause_if_ahead()
    assert pause.paused is None and pause.pauses.held("backlog") == set()
    credit.routed(0, 3000)  # correlators fall behind the topic
    pause.pause_if_ahead()
    assert pause.pauses.held("backlog") == {TP("raw", 0), TP("raw", 1)}
    credit.received(0, 3000)
    credit.correlated(0, 7800)
    assert credit.in_topic() == 200 and credit.held[0] == 0
    pause.maybe_resume()
    assert pause.pauses.held("backlog") == set()


def test_unread_messages_count_whoever_routed_them() -> None:
    """Another process routes to this process's partitions too: the topic's own count of
    unapplied messages says how much waits, not what this process routed."""
    unread = {0: 40}
    credit = RouteCredit(max_ahead=400, unread=unread.get)
    credit.own([0, 1])
    credit.sent(alerts=500, messages=10)  # per message 1 + (50 - 1) * 0.05
    credit.routed(0, 20)  # what this process routed counts only while unread is not known
    credit.routed(1, 300)  # partition 1: unread not known
    assert credit.in_topic() == pytest.approx(40 * credit.per_message + 300)
    assert credit.too_far_ahead()
    unread[0] = 0
    assert credit.in_topic() == 300 and not credit.caught_up()
    credit.correlated(1, 200)
    assert credit.caught_up()


def test_a_revoked_partition_loses_its_reasons() -> None:
    """After a rebalance the partition may come back: it must not stay held for a reason
    that a later hold (which only releases partitions it knows) would never clear."""
    consumer = _Consumer()
    pauses = PauseSet(lambda: consumer)
    pauses.hold("backlog", ["a", "b"])
    pauses.forget(["a"])
    assert pauses.held("backlog") == {"b"}
    pauses.hold("backlog", ["a"])
    assert pauses.held("backlog") == {"a"}


def test_partitions_ahead_of_the_slowest_behind_are_held() -> None:
    consumer = _Consumer(hw={0: 100, 1: 100, 2: 10})
    pauses = PauseSet(lambda: consumer)
    marks = SourceMarks(lambda: consumer, "raw", pauses)
    marks.note(0, 49, [_alert(1000.0)])  # behind, slowest
    marks.note(1, 49, [_alert(1000.0 + ALIGN_DRIFT_S + 1)])  # behind, too far ahead
    marks.note(2, 9, [_alert(5000.0)])  # far ahead but caught up: nothing to hold back
    current = marks.current()
    assert [(m.source, m.behind) for m in current] == [(0, True), (1, True), (2, False)]
    marks.align(current)
    assert pauses.held("align") == {TP("raw", 1), TP("raw", 2)}
    marks.note(0, 99, [_alert(2000.0)])  # caught up: now 1 is the slowest behind
    marks.align(marks.current())
    assert pauses.held("align") == {TP("raw", 0), TP("raw", 2)}
    marks.note(1, 99, [_alert(2100.0)])  # nothing is behind: nothing is held
    marks.align(marks.current())
    assert pauses.held("align") == set()


def test_partitions_are_aligned_with_those_other_processes_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Aligned within one process only, a worker's partitions run ahead of the other
    worker's and the correlators hold the difference."""
    consumer = _Consumer(hw={0: 100, 1: 100})
    pauses = PauseSet(lambda: consumer)
    marks = SourceMarks(lambda: consumer, "raw", pauses)
    marks.note(0, 49, [_alert(1000.0)])
    marks.note(1, 49, [_alert(1010.0)])
    current = marks.current()
    now = 5000.0
    stale = now - source_marks.FOREIGN_STALE_S - 1
    marks.observe_foreign(
        {
            0: (0.0, True, now),  # read here: this process's own mark counts
            2: (945.0, True, now),  # another process's partition, behind
            3: (10.0, True, stale),  # its process is gone
            4: (10.0, False, now),  # caught up: holds nothing back
        },
        now,
    )
    assert set(marks.foreign) == {2, 4}
    marks.align(current)
    assert pauses.held("align") == {TP("raw", 1)}  # 1010 > 945 + ALIGN_DRIFT_S
    assert marks.shared() == {0: (1000.0, True), 1: (1010.0, True)}
    marks.observe_foreign({2: (2000.0, True, now)}, now)
    marks.align(current)
    assert pauses.held("align") == set()


def test_a_partition_not_read_yet_is_behind_from_the_start_of_time() -> None:
    """At start-up the first partition fetched must not run ahead of the others."""
    consumer = _Consumer(hw={0: 100, 1: 100, 2: 0})
    pauses = PauseSet(lambda: consumer)
    marks = SourceMarks(lambda: consumer, "raw", pauses)
    marks.note(0, 9, [_alert(1000.0)])
    current = marks.current()  # 1 has messages waiting, 2 is empty
    assert [(m.source, m.event_time, m.behind) for m in current] == [
        (0, 1000.0, True),
        (1, -math.inf, True),
    ]
    marks.align(current)
    assert pauses.held("align") == {TP("raw", 0)}
    assert marks.shared() == {0: (1000.0, True), 1: (-math.inf, True), 2: (-math.inf, False)}


def test_a_partition_that_does_not_move_unheld_stops_being_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = _Consumer(hw={0: 100, 1: 100})
    pauses = PauseSet(lambda: consumer)
    marks = SourceMarks(lambda: consumer, "raw", pauses)
    now = [1000.0]
    monkeypatch.setattr(source_marks.time, "monotonic", lambda: now[0])
    marks.note(0, 9, [_alert(1000.0)])
    marks.note(1, 9, [_alert(5000.0)])
    marks.align(marks.current())
    assert pauses.held("align") == {TP("raw", 1)}
    now[0] += ALIGN_STUCK_S + 1  # 1 is held (not stuck); 0 moved not at all
    assert [(m.source, m.behind) for m in marks.current()] == [(0, False), (1, True)]
    marks.align(marks.current())
    assert pauses.held("align") == set()
    marks.note(0, 20, [_alert(1010.0)])  # it moves again: waited for again
    assert [m.behind for m in marks.current()] == [True, True]


def _alert(t: float) -> Alert:
    return Alert(
        id=f"a{t}",
        source="test",
        service="svc",
        name="HighLatency",
        severity=Severity.warning,
        status=AlertStatus.firing,
        timestamp=datetime.fromtimestamp(t, UTC),
    )


def test_a_lead_the_correlators_can_afford_is_not_held() -> None:
    """Alignment bounds what the correlators hold: below their budget nothing is held back,
    above it the drift rule applies (a process without correlators: the drift alone)."""
    consumer = _Consumer(hw={0: 100, 1: 100})
    pauses = PauseSet(lambda: consumer)
    holding = [0]
    marks = SourceMarks(
        lambda: consumer, "raw", pauses, holding=lambda: holding[0], holding_limit=1000
    )
    marks.note(0, 49, [_alert(1000.0)])
    marks.note(1, 49, [_alert(1000.0 + 50 * ALIGN_DRIFT_S)])
    marks.align(marks.current())
    assert pauses.held("align") == set()
    holding[0] = 1001
    marks.align(marks.current())
    assert pauses.held("align") == {TP("raw", 1)}
    holding[0] = 10  # the correlators released what they held: the lead goes on
    marks.align(marks.current())
    assert pauses.held("align") == set()
