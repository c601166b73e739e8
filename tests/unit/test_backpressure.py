"""Ingest pauses for correlation of the partitions this process owns, and only for those."""

from __future__ import annotations

from pipeline.app.backpressure import RouteCredit


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
