"""The live report's reading of the store (a stand-in store: the real one is exercised in
tests/integration/test_insights_live.py), refresh failures, and escaping in the page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import networkx as nx
from prometheus_client import CollectorRegistry

from pipeline.app.insights import LiveInsights
from pipeline.domain.insights import Insights
from pipeline.domain.schemas import encode
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


def test_a_failed_refresh_keeps_the_last_report_and_is_counted() -> None:
    store = _store()
    registry = CollectorRegistry()
    topo = Topology(name="t", graph=nx.DiGraph([("api", "db")]))
    live = LiveInsights(store, topo, registry, 7 * 86400)  # type: ignore[arg-type]

    async def go() -> None:
        await live.refresh()
        first = live.last
        assert first is not None and first.report.incidents >= 0
        store.fail = True
        await live.refresh()
        assert live.last is first

    try:
        asyncio.run(go())
    finally:
        live.close()
    assert registry.get_sample_value("stormwatch_insights_refresh_failures_total") == 1.0
    doc: Any = live.document()
    assert doc is not None and "rules" in doc


def test_service_and_alert_names_are_escaped_in_the_page() -> None:
    ins = Insights()
    evil = '<script>alert("x")</script>'
    for i in range(3):
        ins.observe_incident(incident(f"e{i}", i * 600, [(evil, evil, 0)]))
    graph = nx.DiGraph([("api", "db")])
    html = render.html(render.view(ins.report(graph), graph, "t"))
    assert "<script" not in html
    assert "&lt;script&gt;" in html
