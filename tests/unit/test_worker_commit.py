"""The worker's group commit: state written per interval, acks only after the write, and a
message re-consumed after a crash is not applied twice. Faust's topic and stream are faked;
the integration tests run the real thing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.adapters.memory_store import MemoryStore
from pipeline.app.routing import KIND_ALERTS, KIND_HEADER, encode_batches
from pipeline.app.worker import Worker
from pipeline.config import load_settings
from pipeline.domain.schemas import Alert, AlertStatus, Severity
from pipeline.domain.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class _Message:
    partition: int
    offset: int
    timestamp: float
    topic: str = "by-domain"
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class _Event:
    message: _Message
    value: bytes


class _Topic:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, *, key: Any = None, value: bytes, **kw: Any) -> asyncio.Future[None]:
        self.sent.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class _Stream:
    def __init__(self) -> None:
        self.acked: list[int] = []

    async def ack(self, event: _Event) -> bool:
        self.acked.append(event.message.offset)
        return True


def _worker(store: MemoryStore, tmp_path: Path, interval: float) -> tuple[Worker, _Topic, _Stream]:
    settings = load_settings(
        worker={"data_dir": str(tmp_path), "commit_interval_s": interval, "update_interval_s": 0}
    )
    topology = Topology.load(ROOT / "topologies" / "online-boutique.yaml")
    worker = Worker(settings, topology=topology, store=store)  # type: ignore[arg-type]
    topic, stream = _Topic(), _Stream()
    worker.publishing.topic = topic
    worker.commit.stream = stream
    return worker, topic, stream


def _event(offset: int, service: str, seconds: int) -> _Event:
    alert = Alert(
        id=f"a{offset}",
        source="test",
        service=service,
        name="HighLatency",
        severity=Severity.critical,
        status=AlertStatus.firing,
        timestamp=T0.replace(second=seconds),
        labels={"alertname": "HighLatency"},
    )
    [value] = encode_batches([alert], [T0.timestamp()])
    return _Event(_Message(0, offset, T0.timestamp(), headers=[(KIND_HEADER, KIND_ALERTS)]), value)


def test_state_is_written_once_per_interval_and_messages_acked_after(tmp_path: Path) -> None:
    store = MemoryStore()
    worker, topic, stream = _worker(store, tmp_path, interval=60)

    async def run() -> None:
        await worker.correlate.step([_event(0, "checkoutservice", 1)])  # type: ignore[list-item]
        await worker.correlate.step([_event(1, "paymentservice", 2)])  # type: ignore[list-item]
        assert topic.sent, "incident events are published at once"
        assert "pipeline:0" not in store.checkpoints and not stream.acked
        assert await worker.commit.commit_now()

    asyncio.run(run())
    assert stream.acked == [0, 1]
    assert store.checkpoints["offset:0"] == b"1"
    assert store.incidents and store.dedup
    members = [aid for iid in store.incidents for aid in store.incident_members(iid)]
    assert sorted(members) == ["a0", "a1"], "the membership went to the store with the state"


def test_a_message_consumed_again_after_a_crash_is_not_applied_twice(tmp_path: Path) -> None:
    store = MemoryStore()
    first, _, _ = _worker(store, tmp_path, interval=0)  # writes after every step
    events = [_event(0, "checkoutservice", 1), _event(1, "paymentservice", 2)]
    asyncio.run(first.correlate.step(events))  # type: ignore[arg-type]
    saved = store.checkpoints["pipeline:0"]

    # the process died before Kafka committed the offsets: the next owner gets them again
    second, topic, stream = _worker(store, tmp_path, interval=0)
    asyncio.run(second.correlate.step(events))  # type: ignore[arg-type]
    assert topic.sent == [], "a re-consumed message changed an incident"
    assert stream.acked == [0, 1], "re-consumed messages are still acknowledged"
    assert second.states.pipeline(0).snapshot() == saved


class _Flaky(MemoryStore):
    """A store that is unreachable for its first ``down`` dedup reads."""

    unavailable = (ConnectionError,)

    def __init__(self, down: int) -> None:
        super().__init__()
        self.down = down

    def dedup_states(self, fingerprints: Any) -> dict[str, str | None]:
        if self.down:
            self.down -= 1
            raise ConnectionError("Redis went away")
        return super().dedup_states(fingerprints)


def test_a_step_waits_for_an_unreachable_store_and_loses_nothing(tmp_path: Path) -> None:
    store = _Flaky(down=2)
    worker, topic, stream = _worker(store, tmp_path, interval=0)
    asyncio.run(worker.correlate.step([_event(0, "checkoutservice", 1)]))  # type: ignore[list-item]
    assert topic.sent and stream.acked == [0]
    assert store.checkpoints["offset:0"] == b"0"
    retries = worker.registry.get_sample_value(
        "stormwatch_store_retries_total", {"during": "dedup"}
    )
    assert retries == 2


class _Fatal(Exception):
    pass


def _raise(exc: BaseException) -> Any:
    raise _Fatal from exc


def test_a_failure_after_the_state_changed_is_fatal_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    worker, topic, stream = _worker(store, tmp_path, interval=0)
    worker.guard.on_fatal = _raise

    async def broker_down(**kw: Any) -> None:
        raise OSError("broker unreachable")

    topic.send = broker_down  # type: ignore[method-assign]
    try:
        asyncio.run(worker.correlate.step([_event(0, "checkoutservice", 1)]))  # type: ignore[list-item]
    except _Fatal:
        pass
    else:
        raise AssertionError("a failed publish after correlation did not stop the worker")
    assert not worker.guard.consistent, "the half-done step's state could still be written"
    assert stream.acked == [] and "pipeline:0" not in store.checkpoints
