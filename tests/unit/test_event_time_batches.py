"""A batch processed in event time: quiet incidents resolve before the alerts after them."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from pipeline.domain.pipeline import AlertPipeline
from pipeline.domain.schemas import Alert, AlertStatus, Severity
from pipeline.domain.topology import Topology

T0 = datetime(2024, 5, 1, 0, 0, tzinfo=UTC).timestamp()
TOPO = Topology.from_edges("shop", [("frontend", "payments")])


def _alert(aid: str, name: str, t: float, status: str = "firing") -> Alert:
    return Alert(
        id=aid,
        source="test",
        service="payments",
        name=name,
        severity=Severity.critical,
        status=AlertStatus(status),
        timestamp=datetime.fromtimestamp(T0 + t, UTC),
        labels={"pod": "0"},
    )


# an alert that fires and resolves, and 140 s after its resolution (past the 120-s quiet
# period, within the 180-s join gap) a different alert of the same service
BATCH = [
    _alert("a1", "HighLatency", 0),
    _alert("a2", "HighLatency", 10, "resolved"),
    _alert("a3", "ErrorRate", 150),
]


def _incidents(pipe: AlertPipeline) -> list[list[str]]:
    return sorted(inc.alert_ids for inc in pipe.correlator.incidents())


def test_an_incident_quiet_for_its_quiet_period_resolves_before_the_next_alert() -> None:
    pipe = AlertPipeline(TOPO)
    out = pipe.process_in_event_time(BATCH, {})
    assert _incidents(pipe) == [["a1"], ["a3"]]
    assert out.received == 3 and out.duplicates == 0
    assert {ev.type.value for ev in out.events} >= {"opened", "resolved"}


def test_the_same_batch_in_one_piece_keeps_the_first_incident_open() -> None:
    pipe = AlertPipeline(TOPO)  # what the worker did with a backlog before
    pipe.process(BATCH, {})
    assert _incidents(pipe) == [["a1", "a3"]]


def test_states_of_earlier_chunks_deduplicate_later_ones() -> None:
    pipe = AlertPipeline(TOPO)
    repeat = [BATCH[0], _alert("a1", "HighLatency", 5)]  # the same firing state again, later
    out = pipe.process_in_event_time(repeat, {})
    assert out.duplicates == 1


def test_a_checkpoint_with_every_alerts_scores_restores_their_maxima() -> None:
    state = msgspec.msgpack.decode(AlertPipeline(TOPO).snapshot())
    state.pop("score_max")
    state["scores"] = {"inc-1": [[0.2, 0.9], [0.5, 0.1]]}  # the format before score_max
    pipe = AlertPipeline(TOPO)
    pipe.restore(msgspec.msgpack.encode(state))
    assert pipe._scores == {"inc-1": (0.5, 0.9)}
    assert msgspec.msgpack.decode(pipe.snapshot())["score_max"] == {"inc-1": [0.5, 0.9]}


def _other(aid: str, t: float) -> Alert:
    alert = _alert(aid, "DiskFull", t)
    alert.service = "batch-jobs"  # not in the topology, unrelated to payments
    alert.labels = {"pod": aid}
    return alert


# payments resolves at 10 s, so its incident is quiet from 130 s on; alerts elsewhere at
# 129.5 s and 130.3 s, then payments again at 130.4 s
STREAM = [
    _alert("a1", "HighLatency", 0),
    _alert("a2", "HighLatency", 10, "resolved"),
    _other("b", 129.5),
    _other("c", 130.3),
    _alert("a3", "ErrorRate", 130.4),
]


def test_batch_cuts_and_timer_ticks_do_not_change_the_grouping() -> None:
    whole = AlertPipeline(TOPO)
    whole.process_in_event_time(STREAM, {})
    one_by_one = AlertPipeline(TOPO)  # a step per alert, the timer firing after each
    for alert in STREAM:
        one_by_one.process_in_event_time([alert], {})
        one_by_one.tick_in_event_time(alert.epoch)
    assert _incidents(whole) == _incidents(one_by_one)
    # the 130 s tick (before c) resolved payments: a3 opens a new incident
    assert ["a3"] in _incidents(whole)
