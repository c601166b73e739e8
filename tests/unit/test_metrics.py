"""Every metric SREs watch is observed where it happens, with bounded labels. The worker's
agents run on faked Faust topics and an in-memory store; the Prometheus integration test
scrapes the real thing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from pipeline.adapters.memory_store import MemoryStore
from pipeline.app.dead_letters import DeadLetters
from pipeline.app.event_sender import EventSender
from pipeline.app.health import Progress, by_topic
from pipeline.app.health_metrics import HealthSampler
from pipeline.app.liveness import Liveness
from pipeline.app.metrics import (
    DLQ_KINDS,
    KNOWN_SOURCES,
    MAX_OTHER_SOURCES,
    OTHER,
    TOP_ROOT_CAUSES,
    BoundedLabel,
    Metrics,
    top_counts,
)
from pipeline.app.routing import KIND_ALERTS, KIND_HEADER, encode_batches
from pipeline.app.worker import Worker
from pipeline.config import load_settings
from pipeline.domain.detectors import ANOMALY_SOURCE
from pipeline.domain.event_view import EventLimits
from pipeline.domain.schemas import (
    Alert,
    AlertStatus,
    EventType,
    Incident,
    IncidentEvent,
    IncidentStatus,
    Severity,
)
from pipeline.domain.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class _Message:
    partition: int
    offset: int
    timestamp: float
    topic: str = "topic"
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    value: bytes = b""


@dataclass
class _Event:
    message: _Message
    value: bytes

    def __post_init__(self) -> None:
        self.message.value = self.value


class _Topic:
    """A Faust topic that acknowledges every send at once."""

    def __init__(self, topic: str = "incidents") -> None:
        self.topic = topic
        self.sent: list[bytes] = []

    async def send(self, *, value: bytes, partition: int = 0, **kw: Any) -> asyncio.Future[Any]:
        self.sent.append(value)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(SimpleNamespace(partition=partition, offset=len(self.sent)))
        return done


class _Stream:
    """A Faust stream that hands out ``batches`` and acknowledges anything."""

    def __init__(self, batches: list[list[Any]] | None = None) -> None:
        self.batches = batches or []

    async def ack(self, event: Any) -> bool:
        return True

    async def noack_take(self, n: int, within: float) -> Any:
        for batch in self.batches:
            yield batch


def _value(m: Metrics, name: str, **labels: str) -> float:
    return m.registry.get_sample_value(name, labels) or 0.0


def _worker(tmp_path: Path, **worker: Any) -> Worker:
    settings = load_settings(
        worker={"data_dir": str(tmp_path), "update_interval_s": 0, "max_held_alerts": 0, **worker}
    )
    topology = Topology.load(ROOT / "topologies" / "online-boutique.yaml")
    w = Worker(settings, topology=topology, store=MemoryStore())  # type: ignore[arg-type]
    w.publishing.topic = _Topic()
    w.router.topic = _Topic("by-domain")
    w.ingest.dead_letters.topic = _Topic("dlq")
    w.commit.stream = _Stream()
    return w


def _alert(i: int, service: str, *, source: str = "test", root: bool = False) -> Alert:
    return Alert(
        id=f"a{i}",
        source=source,
        service=service,
        name="ServiceDown" if root else "HighLatency",
        severity=Severity.critical,
        status=AlertStatus.firing,
        timestamp=T0 + timedelta(seconds=i),
        labels={},
    )


def _routed(offset: int, alerts: list[Alert]) -> _Event:
    [value] = encode_batches(alerts, [T0.timestamp()] * len(alerts))
    msg = _Message(0, offset, T0.timestamp(), "by-domain", headers=[(KIND_HEADER, KIND_ALERTS)])
    return _Event(msg, value)


# ---------------------------------------------------------------------- bounded labels


def test_bounded_label_admits_known_values_and_the_first_others() -> None:
    label = BoundedLabel(["alertmanager"], limit=2)
    assert label("alertmanager") == "alertmanager"
    assert [label(s) for s in ("a", "b", "c", "a", "alertmanager")] == [
        "a",
        "b",
        OTHER,
        "a",
        "alertmanager",
    ]
    assert label("x" * 100) == OTHER
    assert label("") == OTHER


def test_top_counts_keeps_the_largest_and_sums_the_rest() -> None:
    assert top_counts({"a": 1, "b": 5, "c": 3, "d": 3}, 2) == {"b": 5, "c": 3, OTHER: 4}
    assert top_counts({"a": 1}, 2) == {"a": 1}


# ---------------------------------------------------------------------- alerts in, by source


def test_ingest_counts_alerts_per_source_with_a_bounded_label(tmp_path: Path) -> None:
    w = _worker(tmp_path)
    canonical = [
        msgspec.json.encode(_alert(i, "frontend", source=f"emitter-{i}"))
        for i in range(MAX_OTHER_SOURCES + 5)
    ]
    values = [(FIXTURES / "webhook_1.json").read_bytes(), *canonical, b"{not json"]
    events = [_Event(_Message(0, i, T0.timestamp(), "alerts.raw"), v) for i, v in enumerate(values)]
    asyncio.run(w.ingest.handle(events))  # type: ignore[arg-type]
    m = w.metrics
    assert _value(m, "stormwatch_alerts_total", source="alertmanager") == 1
    assert _value(m, "stormwatch_alerts_total", source="emitter-0") == 1
    assert _value(m, "stormwatch_alerts_total", source=OTHER) == 5
    sources = {
        s.labels["source"]
        for metric in m.registry.collect()
        if metric.name == "stormwatch_alerts"
        for s in metric.samples
        if s.name == "stormwatch_alerts_total"
    }
    first = {f"emitter-{i}" for i in range(MAX_OTHER_SOURCES)}
    assert sources == {*KNOWN_SOURCES, *first, OTHER}
    assert _value(m, "stormwatch_dlq_total", stage="normalize", error="decode") == 1


# ---------------------------------------------------------------------- model scores


def test_correlate_observes_each_alerts_novelty_and_actionability(tmp_path: Path) -> None:
    w = _worker(tmp_path)
    alerts = [_alert(0, "paymentservice", root=True), _alert(1, "checkoutservice")]
    asyncio.run(w.correlate.run(_Stream([[_routed(0, alerts)]])))
    m = w.metrics
    for model in ("novelty", "actionability"):
        assert _value(m, "stormwatch_model_score_count", model=model) == 2
        total = _value(m, "stormwatch_model_score_sum", model=model)
        assert 0 <= total <= 2
    assert _value(m, "stormwatch_messages_total", topic="by-domain") == 1


class _Detectors:
    """Scores 0.9 and raises an anomaly alert for every sample."""

    def observe(self, sample: Any) -> tuple[float, Alert]:
        return 0.9, _alert(0, sample.service, source=ANOMALY_SOURCE)


def test_detect_observes_anomaly_scores_and_counts_anomaly_alerts(tmp_path: Path) -> None:
    w = _worker(tmp_path)
    sample = {"service": "frontend", "metric": "latency", "value": 1.0, "timestamp": T0.isoformat()}
    events = [_Event(_Message(0, i, T0.timestamp()), json.dumps(sample).encode()) for i in (0, 1)]
    asyncio.run(w.detect.handle(events))  # type: ignore[arg-type]
    m = w.metrics
    assert _value(m, "stormwatch_model_score_count", model="anomaly") == 2
    assert _value(m, "stormwatch_alerts_total", source=ANOMALY_SOURCE) == 0  # scores were low
    w.detect.detectors = _Detectors()  # type: ignore[assignment]
    asyncio.run(w.detect.handle(events[:1]))  # type: ignore[arg-type]
    assert _value(m, "stormwatch_model_score_bucket", model="anomaly", le="0.9") == 3
    assert _value(m, "stormwatch_model_score_bucket", model="anomaly", le="0.85") == 2
    assert _value(m, "stormwatch_alerts_total", source=ANOMALY_SOURCE) == 1


# ---------------------------------------------------------------------- feedback


def test_feedback_is_counted_by_action_and_verdict(tmp_path: Path) -> None:
    w = _worker(tmp_path)
    asyncio.run(w.correlate.step([_routed(0, [_alert(0, "frontend")])]))  # type: ignore[list-item]
    [iid] = [inc.id for p in w.states.pipelines.values() for inc in p.correlator.incidents()]
    msgs = [
        {"incident_id": iid, "action": "ack", "timestamp": T0.isoformat()},
        {"incident_id": iid, "action": "verdict", "verdict": "noise", "timestamp": T0.isoformat()},
    ]
    events = [
        _Event(_Message(0, i, 0.0, "feedback"), json.dumps(v).encode()) for i, v in enumerate(msgs)
    ]
    for event in events:
        asyncio.run(w.feedback.handle(event))  # type: ignore[arg-type]
    m = w.metrics
    assert _value(m, "stormwatch_feedback_total", action="ack", verdict="none") == 1
    assert _value(m, "stormwatch_feedback_total", action="verdict", verdict="noise") == 1


# ---------------------------------------------------------------------- compression


def test_resolved_incidents_observe_their_size(tmp_path: Path) -> None:
    settings = load_settings(worker={"data_dir": str(tmp_path)})
    metrics = Metrics(CollectorRegistry())
    sender = EventSender(
        settings,
        DeadLetters(_Topic("dlq"), metrics),
        metrics,
        EventLimits(max_bytes=262_144, max_alerts=100),
    )
    sender.topic = _Topic()

    def event(iid: str, kind: EventType, count: int, merged_into: str | None = None) -> Any:
        inc = Incident(
            id=iid,
            status=IncidentStatus.resolved,
            opened_at=T0,
            updated_at=T0,
            alert_ids=[f"{iid}-{i}" for i in range(min(count, 3))],
            alert_count=count,
            merged_into=merged_into,
        )
        return IncidentEvent(type=kind, incident=inc, at=T0)

    events = [
        event("i1", EventType.opened, 1),
        event("i1", EventType.resolved, 7),
        event("i2", EventType.resolved, 2),
        event("i3", EventType.resolved, 4, merged_into="i1"),  # counted in i1
    ]
    asyncio.run(sender.send(events))
    assert _value(metrics, "stormwatch_incident_alerts_count") == 2
    assert _value(metrics, "stormwatch_incident_alerts_sum") == 9
    assert _value(metrics, "stormwatch_incident_events_total", type="opened") == 1


# ---------------------------------------------------------------------- open incidents


def test_the_tick_sets_open_incidents_by_root_cause(tmp_path: Path) -> None:
    w = _worker(tmp_path)
    m = w.metrics
    asyncio.run(w.correlate.step([_routed(0, [_alert(0, "paymentservice", root=True)])]))  # type: ignore[list-item]
    asyncio.run(w.lifecycle.tick(T0.timestamp() + 2))
    assert _value(m, "stormwatch_open_incidents") == 1
    assert _value(m, "stormwatch_open_incidents_by_root_cause", root_cause="paymentservice") == 1


def test_root_causes_beyond_the_top_are_other_and_stale_ones_removed() -> None:
    m = Metrics(CollectorRegistry())
    counts: dict[str | None, int] = {f"svc-{i:02d}": 20 - i for i in range(TOP_ROOT_CAUSES + 3)}
    counts[None] = 4
    m.open_root_causes(counts)
    shown = {
        s.labels["root_cause"]: s.value
        for metric in m.registry.collect()
        if metric.name == "stormwatch_open_incidents_by_root_cause"
        for s in metric.samples
    }
    assert len(shown) == TOP_ROOT_CAUSES + 1
    assert shown["svc-00"] == 20 and "svc-12" not in shown
    assert shown[OTHER] == 10 + 9 + 8 + 4  # svc-10..12 and those without a root cause
    m.open_root_causes({"svc-00": 1})
    assert _value(m, "stormwatch_open_incidents_by_root_cause", root_cause="svc-00") == 1
    assert (
        m.registry.get_sample_value(
            "stormwatch_open_incidents_by_root_cause", {"root_cause": OTHER}
        )
        is None
    )


# ---------------------------------------------------------------------- lag and readiness


def test_lag_is_counted_past_the_last_processed_offset_or_the_position() -> None:
    p = Progress(stall_after_s=60)
    p.record({("a", 0): 9})
    highwaters = {("a", 0): 15, ("a", 1): 8, ("b", 0): None, ("b", 1): 4}
    assert p.unprocessed(highwaters) == [("a", 1), ("b", 0), ("b", 1)]
    lag = p.lag(highwaters, positions={("a", 1): 5})
    assert lag == {("a", 0): 5, ("a", 1): 3}  # (b, 1): no position known yet
    assert by_topic(lag) == {"a": 8}


class _Consumer:
    def __init__(self, highwaters: dict[TP, int], positions: dict[TP, int]) -> None:
        self.hw = highwaters
        self.positions = positions
        self.down = False

    def assignment(self) -> set[TP]:
        return set(self.hw)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        if self.down:
            raise ConnectionError("broker away")
        return {tp: self.hw[tp] for tp in tps}

    async def position(self, tp: TP) -> int:
        return self.positions[tp]


class _Store:
    def __init__(self) -> None:
        self.up = True

    def ping(self) -> bool:
        if not self.up:
            raise ConnectionError("Redis away")
        return True


def test_the_sampler_sets_lag_per_topic_stalls_and_readiness() -> None:
    raw0, raw1, fb = TP("alerts.raw", 0), TP("alerts.raw", 1), TP("feedback", 0)
    consumer = _Consumer({raw0: 100, raw1: 50, fb: 3}, {raw1: 40, fb: 3})
    liveness = Liveness(stall_after_s=0.0, consumer=lambda: consumer)
    liveness.progress.record({("alerts.raw", 0): 79})
    metrics, store = Metrics(CollectorRegistry()), _Store()
    sampler = HealthSampler(liveness, store, metrics)  # type: ignore[arg-type]

    asyncio.run(sampler.sample())
    assert _value(metrics, "stormwatch_consumer_lag_messages", topic="alerts.raw") == 20 + 10
    assert _value(metrics, "stormwatch_consumer_lag_messages", topic="feedback") == 0
    assert _value(metrics, "stormwatch_worker_ready") == 1  # stalls need a second look

    asyncio.run(sampler.sample())  # nothing moved since: stalled (stall_after_s is 0)
    assert _value(metrics, "stormwatch_stalled_partitions") == 1  # raw0: 20 waiting
    assert _value(metrics, "stormwatch_worker_ready") == 0

    liveness.progress.record({("alerts.raw", 0): 99, ("alerts.raw", 1): 49})
    consumer.hw = {fb: 3}  # the raw partitions went to another worker
    asyncio.run(sampler.sample())
    assert _value(metrics, "stormwatch_consumer_lag_messages", topic="alerts.raw") == 0
    assert _value(metrics, "stormwatch_stalled_partitions") == 0
    assert _value(metrics, "stormwatch_worker_ready") == 1

    store.up = False
    asyncio.run(sampler.sample())
    assert _value(metrics, "stormwatch_worker_ready") == 0

    store.up, consumer.down = True, True  # no verdict from the broker: lag stays as it was
    consumer.hw = {fb: 10}
    asyncio.run(sampler.sample())
    assert _value(metrics, "stormwatch_worker_ready") == 1
    assert _value(metrics, "stormwatch_consumer_lag_messages", topic="feedback") == 0


def test_the_merge_topic_read_by_a_consumer_of_its_own_counts_in_lag_and_stalls() -> None:
    fb = TP("feedback", 0)
    consumer = _Consumer({fb: 3}, {fb: 3})
    liveness = Liveness(stall_after_s=0.0, consumer=lambda: consumer)
    owned: dict[tuple[str, int], int | None] = {("merge", 0): None}  # assigned, no fetch yet
    liveness.add_source(lambda: owned)
    metrics, store = Metrics(CollectorRegistry()), _Store()
    sampler = HealthSampler(liveness, store, metrics)  # type: ignore[arg-type]

    asyncio.run(sampler.sample())
    assert _value(metrics, "stormwatch_worker_ready") == 1
    liveness.processed([_Event(_Message(0, 41, 0.0, topic="merge"), b"")])
    owned[("merge", 0)] = 50  # the stage applied up to 41, 8 more are waiting
    asyncio.run(sampler.sample())
    assert _value(metrics, "stormwatch_consumer_lag_messages", topic="merge") == 8
    asyncio.run(sampler.sample())  # the stage did not move: stalled
    assert _value(metrics, "stormwatch_stalled_partitions") == 1
    assert _value(metrics, "stormwatch_worker_ready") == 0

    owned.clear()  # the stage moved to another process: nothing of it is watched here
    asyncio.run(sampler.sample())
    assert _value(metrics, "stormwatch_stalled_partitions") == 0
    assert _value(metrics, "stormwatch_worker_ready") == 1
    assert ("merge", 0) not in liveness.progress.parts


@pytest.mark.parametrize("metric", ["stormwatch_worker_ready", "stormwatch_stalled_partitions"])
def test_health_gauges_exist_before_the_first_sample(metric: str) -> None:
    assert Metrics(CollectorRegistry()).registry.get_sample_value(metric) == 0


def test_series_known_in_advance_start_at_zero() -> None:
    """So that ``rate()`` sees the first increase (a series born at 1 shows none)."""
    m = Metrics(CollectorRegistry())
    for stage, error in DLQ_KINDS:
        assert (
            m.registry.get_sample_value("stormwatch_dlq_total", {"stage": stage, "error": error})
            == 0
        )
    assert _value(m, "stormwatch_incident_events_total", type="resolved") == 0
    assert m.registry.get_sample_value("stormwatch_alerts_total", {"source": "alertmanager"}) == 0
    labels = {"action": "verdict", "verdict": "noise"}
    assert m.registry.get_sample_value("stormwatch_feedback_total", labels) == 0
