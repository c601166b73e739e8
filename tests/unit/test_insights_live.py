"""The live insights: the report over the store (``--since``), the feed from the topics and
its checkpoint (stand-ins for the broker and Redis: the real ones are exercised in
tests/integration/test_insights_live.py), and escaping in the page."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import networkx as nx
import pytest
from prometheus_client import CollectorRegistry

from pipeline.app.insights import LiveInsights
from pipeline.app.insights_feed import CHECKPOINT, InsightsFeed, LostLease
from pipeline.config import Settings
from pipeline.domain.insights import Insights
from pipeline.domain.insights import checkpoint as ckpt
from pipeline.domain.schemas import EventType, Feedback, FeedbackAction, IncidentEvent, encode
from pipeline.domain.topology import Topology
from pipeline.reports import render
from pipeline.reports.live import store_report
from tests.unit.test_insights import T0, incident

NOW = T0.timestamp() + 10 * 86400


class FakeStore:
    def __init__(self, records: list[bytes], feedback: dict[str, list[bytes]]) -> None:
        self.records = records
        self.feedback = feedback
        self.fail = False

    def with_timeout(self, seconds: float) -> FakeStore:
        return self

    def incident_records(self) -> Iterator[bytes]:
        if self.fail:
            raise ConnectionError("redis away")
        yield from self.records

    def feedback_for_many(self, ids: Sequence[str]) -> list[list[bytes]]:
        return [self.feedback.get(i, []) for i in ids]


def _store() -> FakeStore:
    old = incident("old", 0, [("db", "X", 0)])  # opened 10 days before NOW
    recent = [incident(f"r{i}", 9 * 86400 + i * 600, [("db", "Blip", 0)]) for i in range(3)]
    still_open = msgspec.structs.replace(
        incident("open", 9 * 86400, [("db", "Blip", 0)]), resolved_at=None
    )
    ack = json.dumps(
        {"incident_id": "r0", "action": "ack", "timestamp": "2024-01-10T00:02:00Z"}
    ).encode()
    return FakeStore(
        [encode(old), *map(encode, recent), encode(still_open), b"{not json"],
        {"r0": [ack, b'{"incident_id": "r0"}']},
    )


def test_store_report_takes_closed_incidents_in_the_window_with_their_feedback() -> None:
    rep, unreadable = store_report(_store(), 7 * 86400, NOW)  # type: ignore[arg-type]
    assert rep.incidents == 3  # not the old one, not the open one
    assert unreadable == 2  # the bad record and the bad feedback message
    assert rep.feedback == 1
    blip = rep.rules[0]
    assert (blip.service, blip.name) == ("db", "Blip")
    # r0 was acknowledged: not noise; r1 and r2 were lone and untouched
    assert blip.noise_share == 2 / 3


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes:
        return self._v


class CheckpointStore:
    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}
        self.fail = False

    def with_timeout(self, seconds: float) -> CheckpointStore:
        return self

    def save_checkpoint(self, name: str, data: bytes) -> None:
        if self.fail:
            raise ConnectionError("redis away")
        self.saved[name] = data

    def load_checkpoint(self, name: str) -> bytes | None:
        return self.saved.get(name)

    def save_checkpoint_held(self, name: str, data: bytes, lease_key: str, token: str) -> bool:
        if self.holder != token:
            return False
        self.save_checkpoint(name, data)
        return True

    holder: str | None = None


class FakeLease:
    """One process's view of a lease held in :class:`CheckpointStore`."""

    key = "sw:lease:insights"

    def __init__(self, store: CheckpointStore, token: str) -> None:
        self.store, self.token = store, token

    def hold(self) -> bool:
        if self.store.holder in (None, self.token):
            self.store.holder = self.token
            return True
        return False

    def release(self) -> None:
        if self.store.holder == self.token:
            self.store.holder = None


def _messages() -> list[FakeMessage]:
    """Three lone blips resolved on ``incidents`` (with an update before each), an ack for the
    first on ``feedback``, and one message that is not an event."""
    out = []
    for i in range(3):
        inc = incident(f"b{i}", i * 600, [("db", "Blip", 0)])
        for n, kind in enumerate((EventType.updated, EventType.resolved)):
            ev = IncidentEvent(type=kind, incident=inc, at=inc.updated_at)
            out.append(FakeMessage("incidents", i % 2, 2 * i + n, encode(ev)))
    ack = Feedback(incident_id="b0", action=FeedbackAction.ack, timestamp=T0)
    out.append(FakeMessage("feedback", 0, 0, encode(ack)))
    out.append(FakeMessage("incidents", 0, 99, b"{not an event"))
    return out


def test_the_feed_checkpoints_state_with_offsets_and_a_restart_feeds_each_message_once() -> None:
    settings = Settings()
    topo = Topology(name="t", graph=nx.DiGraph([("api", "db")]))
    store = CheckpointStore()
    skipped: list[str] = []
    feed = InsightsFeed(settings, store, topo, lambda _r: None, on_skip=skipped.append)  # type: ignore[arg-type]
    msgs = _messages()
    for m in msgs[:4]:
        feed.feed(m)
    assert feed.write()
    # a crash now: the messages after the document are read again by the next process
    insights, offsets = ckpt.load(store.saved[CHECKPOINT])
    assert offsets == {("incidents", 0): 1, ("incidents", 1): 3}
    again = InsightsFeed(settings, store, topo, lambda _r: None, on_skip=skipped.append)  # type: ignore[arg-type]
    again.insights, again.fed = insights, offsets
    for m in msgs:  # the whole topic again: what the document covers is skipped by offset
        if m.offset() > offsets.get((m.topic(), m.partition()), -1):
            again.feed(m)
    rep = again.insights.report()
    once = Insights()
    for m in msgs[:-1]:
        if m.topic() == "incidents":
            once.observe_event(msgspec.json.decode(m.value(), type=IncidentEvent))
        else:
            once.observe_feedback(msgspec.json.decode(m.value(), type=Feedback))
    assert rep == once.report()
    assert rep.incidents == 3 and rep.feedback == 1
    assert skipped == ["incidents"]
    # Redis away: the write fails, is counted, and the next one carries everything
    failures: list[int] = []
    again.on_write_failure = lambda: failures.append(1)
    store.fail = True
    assert not again.write() and failures == [1]
    store.fail = False
    assert again.write()
    assert ckpt.load(store.saved[CHECKPOINT])[1][("incidents", 0)] == 99


def test_only_the_lease_holder_feeds_and_a_lost_lease_never_overwrites_the_successor() -> None:
    settings = Settings()
    topo = Topology(name="t", graph=nx.DiGraph([("api", "db")]))
    store = CheckpointStore()
    leads: list[tuple[str, bool]] = []

    def feed_of(name: str) -> InsightsFeed:
        return InsightsFeed(
            settings,
            store,  # type: ignore[arg-type]
            topo,
            lambda _r: None,
            lease=FakeLease(store, name),
            on_lead=lambda on: leads.append((name, on)),
        )

    first, second = feed_of("first"), feed_of("second")
    assert first._wait_for_lease() and store.holder == "first"
    second.stop.set()  # standing by: it does not get the lease, and returns when stopped
    assert not second._wait_for_lease()
    msgs = _messages()
    first.feed(msgs[1])
    assert first.write()
    # the first process hangs past its lease; the second takes over and writes
    store.holder = None
    second.stop.clear()
    assert second._wait_for_lease() and store.holder == "second"
    second.insights, second.fed = ckpt.load(store.saved[CHECKPOINT])
    second.written = dict(second.fed)
    second.feed(msgs[3])
    assert second.write()
    mine = store.saved[CHECKPOINT]
    # the first wakes up: its renewal and its write both find the lease gone
    first.feed(msgs[5])
    with pytest.raises(LostLease):
        first._renew()
    with pytest.raises(LostLease):
        first.write()
    assert store.saved[CHECKPOINT] == mine
    assert ckpt.load(mine)[0].report().incidents == 2


def test_a_standby_serves_no_report_and_exports_no_insights_series() -> None:
    registry = CollectorRegistry()
    topo = Topology(name="t", graph=nx.DiGraph([("api", "db")]))
    live = LiveInsights(Settings(), CheckpointStore(), topo, registry)  # type: ignore[arg-type]
    ins = Insights()
    for i in range(3):
        ins.observe_incident(incident(f"e{i}", i * 600, [("db", "Blip", 0)]))
    live.lead(True)
    live.publish(ins.report(topo.graph))
    assert registry.get_sample_value("stormwatch_insights_leader") == 1.0
    labels = {"service": "db", "alertname": "Blip"}
    assert registry.get_sample_value("stormwatch_insights_rule_pages", labels) == 3.0
    live.lead(False)
    assert live.last is None and live.document() is None
    assert registry.get_sample_value("stormwatch_insights_leader") == 0.0
    assert registry.get_sample_value("stormwatch_insights_rule_pages", labels) is None
    assert registry.get_sample_value("stormwatch_insights_incidents") == 0.0


def test_a_checkpoint_of_another_format_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ckpt.CheckpointError, match="format 7, this version reads 1"):
        ckpt.load(msgspec.msgpack.encode({"version": 7, "offsets": {}, "state": b""}))
    with pytest.raises(ckpt.CheckpointError, match="does not decode"):
        ckpt.load(b"garbage")


def test_the_live_insights_serve_the_report_the_feed_built() -> None:
    registry = CollectorRegistry()
    topo = Topology(name="t", graph=nx.DiGraph([("api", "db")]))
    live = LiveInsights(Settings(), CheckpointStore(), topo, registry)  # type: ignore[arg-type]
    assert live.document() is None
    ins = Insights()
    for i in range(3):
        ins.observe_incident(incident(f"e{i}", i * 600, [("db", "Blip", 0)]))
    live.publish(ins.report(topo.graph))
    doc: Any = live.document()
    assert doc is not None and doc["incidents"] == 3
    assert live.last is not None and "<svg" in live.last.html
    assert registry.get_sample_value("stormwatch_insights_incidents") == 3.0


def test_service_and_alert_names_are_escaped_in_the_page() -> None:
    ins = Insights()
    evil = '<script>alert("x")</script>'
    for i in range(3):
        ins.observe_incident(incident(f"e{i}", i * 600, [(evil, evil, 0)]))
    graph = nx.DiGraph([("api", "db")])
    html = render.html(render.view(ins.report(graph), graph, "t"))
    assert "<script" not in html
    assert "&lt;script&gt;" in html
