"""An incident event the broker refuses for good never fails the step: too large is sent
again in its minimal form, anything else goes to the DLQ; transient failures still fail it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry

from pipeline.adapters.memory_store import MemoryStore
from pipeline.app.dead_letters import DeadLetters
from pipeline.app.group_commit import GroupCommit
from pipeline.app.incident_events import IncidentPublishing
from pipeline.app.metrics import Metrics
from pipeline.app.partitions import PartitionStates
from pipeline.app.publisher import Rejected, failure
from pipeline.app.steps import Step
from pipeline.config import load_settings
from pipeline.domain.pipeline import AlertPipeline
from pipeline.domain.schemas import DeadLetter, EventType, Incident, IncidentEvent, IncidentStatus
from pipeline.domain.topology import Topology

T0 = datetime(2024, 5, 1, tzinfo=UTC)


class _Topic:
    """Settles each send with the next outcome (None: acknowledged)."""

    def __init__(self, outcomes: list[Exception | None]) -> None:
        self.topic = "incidents"
        self.outcomes = outcomes
        self.sent: list[bytes] = []

    async def send(self, *, key: bytes, value: bytes, **kw: Any) -> asyncio.Future[None]:
        self.sent.append(value)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is None:
            fut.set_result(None)
        else:
            fut.set_exception(outcome)
        return fut


class _DLQ:
    def __init__(self) -> None:
        self.letters: list[tuple[bytes, list[tuple[str, bytes]]]] = []

    async def send(self, *, key: bytes, value: bytes, headers: Any) -> None:
        self.letters.append((value, headers))


def _publishing(tmp_path: Path, outcomes: list[Exception | None]) -> tuple[Any, ...]:
    settings = load_settings(worker={"data_dir": str(tmp_path), "update_interval_s": 0})
    metrics = Metrics(CollectorRegistry())
    store: Any = MemoryStore()
    topology = Topology.from_edges("t", [("a", "b")])
    states = PartitionStates(settings, topology, store, scorer=None)  # type: ignore[arg-type]
    commit = GroupCommit(1.0, store, states, metrics)
    dlq = _DLQ()
    pub = IncidentPublishing(settings, states, commit, DeadLetters(dlq, metrics), metrics)
    topic = _Topic(outcomes)
    pub.topic = topic
    step = Step(0, AlertPipeline(topology))
    inc = Incident(id="inc-1", status=IncidentStatus.open, opened_at=T0, updated_at=T0)
    step.events = [IncidentEvent(type=EventType.opened, incident=inc, at=T0)]
    return pub, topic, dlq, metrics, step


def _count(metrics: Metrics, error: str, outcome: str) -> float | None:
    return metrics.registry.get_sample_value(
        "stormwatch_publish_rejected_total", {"error": error, "outcome": outcome}
    )


def test_too_large_is_sent_again_in_minimal_form(tmp_path: Path) -> None:
    too_large = Rejected(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    pub, topic, dlq, metrics, step = _publishing(tmp_path, [too_large, None])
    asyncio.run(pub.publish([step]))
    assert len(topic.sent) == 2 and len(topic.sent[1]) <= len(topic.sent[0])
    assert _count(metrics, "MSG_SIZE_TOO_LARGE", "degraded") == 1
    assert dlq.letters == []


def test_refused_for_good_goes_to_the_dlq_with_the_reason(tmp_path: Path) -> None:
    unknown = Rejected(KafkaError(KafkaError._UNKNOWN_TOPIC))
    pub, _topic, dlq, metrics, step = _publishing(tmp_path, [unknown])
    asyncio.run(pub.publish([step]))
    [(value, headers)] = dlq.letters
    letter = DeadLetter.from_headers(headers)
    assert letter.stage == "publish" and letter.error == "_UNKNOWN_TOPIC"
    assert letter.source_topic == "incidents" and b"inc-1" in value
    assert _count(metrics, "_UNKNOWN_TOPIC", "dead_lettered") == 1


def test_too_large_twice_goes_to_the_dlq(tmp_path: Path) -> None:
    err = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
    pub, _topic, dlq, metrics, step = _publishing(tmp_path, [Rejected(err), Rejected(err)])
    asyncio.run(pub.publish([step]))
    assert len(dlq.letters) == 1
    assert _count(metrics, "MSG_SIZE_TOO_LARGE", "dead_lettered") == 1


def test_a_transient_failure_still_fails_the_step(tmp_path: Path) -> None:
    timed_out = KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT))
    pub, _topic, dlq, _metrics, step = _publishing(tmp_path, [timed_out])
    with pytest.raises(KafkaException):
        asyncio.run(pub.publish([step]))
    assert dlq.letters == []


def test_errors_are_classified() -> None:
    assert isinstance(failure(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)), Rejected)
    assert isinstance(failure(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)), Rejected)
    assert not isinstance(failure(KafkaError(KafkaError._MSG_TIMED_OUT)), Rejected)
    assert not isinstance(failure(KafkaError(KafkaError._TRANSPORT)), Rejected)
