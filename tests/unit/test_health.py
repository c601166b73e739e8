"""Stall detection behind /healthz."""

from __future__ import annotations

from pipeline.app.health import Progress, batch_offsets

RAW = ("alerts.raw", 0)
ROUTED = ("by-domain", 1)


def test_work_waiting_without_progress_for_the_whole_period_is_a_stall() -> None:
    p = Progress(stall_after_s=60)
    p.record(batch_offsets([("alerts.raw", 0, 10), ("alerts.raw", 0, 11), ("by-domain", 1, 3)]))
    assert p.stalled({RAW: 12, ROUTED: 4}, now=0) == {}  # caught up: idle, not stalled
    assert p.stalled({RAW: 20, ROUTED: 4}, now=10) == {}  # work waiting: the clock starts
    assert p.stalled({RAW: 20, ROUTED: 4}, now=69) == {}
    assert p.stalled({RAW: 20, ROUTED: 4}, now=70) == {"alerts.raw/0": 8}
    p.record({RAW: 12})  # it moved: the clock starts again
    assert p.stalled({RAW: 20}, now=100) == {}


def test_a_quiet_partition_that_just_got_messages_is_not_stalled() -> None:
    p = Progress(stall_after_s=60)
    p.record({RAW: 5})
    assert p.stalled({RAW: 6}, now=0) == {}
    assert p.stalled({RAW: 9}, now=3600) == {}  # waiting since this probe, not since progress


def test_a_transaction_marker_is_not_work_waiting() -> None:
    p = Progress(stall_after_s=60)
    p.record({RAW: 5})
    assert p.stalled({RAW: 7}, now=0) == {}
    assert p.stalled({RAW: 7}, now=600) == {}


def test_one_stuck_partition_is_found_while_others_move() -> None:
    p = Progress(stall_after_s=60)
    p.record({RAW: 1, ROUTED: 1})
    assert p.stalled({RAW: 40, ROUTED: 60}, now=0) == {}
    p.record({ROUTED: 59})
    assert p.stalled({RAW: 40, ROUTED: 60}, now=120) == {"alerts.raw/0": 38}


def test_a_partition_never_processed_since_assignment_stalls_on_new_messages() -> None:
    p = Progress(stall_after_s=60)
    p.assign([RAW])
    assert p.stalled({RAW: 1000}, now=0) == {}  # the backlog before the first probe: no verdict
    assert p.stalled({RAW: 1000}, now=600) == {}
    assert p.stalled({RAW: 1005}, now=610) == {}
    assert p.stalled({RAW: 1005, ROUTED: None}, now=670) == {"alerts.raw/0": 5}
    p.forget([RAW])
    assert RAW not in p.parts
