"""Real services for integration tests: a Tansu broker and a redis-server, started here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
from confluent_kafka import Consumer, Message, Producer

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.localstack import (
    Service,
    free_port,
    start_broker,
    start_redis,
    worker_env,
    worker_healthy,
)
from pipeline.domain.schemas import Incident, IncidentEvent
from tests.integration.prometheus import prometheus_server  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_broker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def redis_service() -> Iterator[Service]:
    service = start_redis()
    yield service
    service.stop()


@dataclass
class Stack:
    """One isolated tenant on the shared services: own topics, app id and Redis prefix."""

    bootstrap: str
    redis_url: str
    ns: str
    topology: Path
    web_port: int = field(default_factory=free_port)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return f"{self.ns}.{name}"

    @property
    def env(self) -> dict[str, str]:
        return self.worker_env()

    def worker_env(self, **worker: str) -> dict[str, str]:
        port = int(worker.pop("web_port", self.web_port))
        return worker_env(
            bootstrap=self.bootstrap,
            redis_url=self.redis_url,
            topology=self.topology,
            web_port=port,
            ns=self.ns,
            partitions=2,
            **{"batch_timeout_s": "0.05", **worker},
        )

    def start_worker(
        self, extra_env: dict[str, str] | None = None, **worker: str
    ) -> subprocess.Popen[bytes]:
        """A worker process; ``worker`` overrides STORMWATCH_WORKER__* settings (one web port
        per process is picked here), ``extra_env`` any other variables."""
        env = {**self.worker_env(**worker), **(extra_env or {})}
        port = int(env["STORMWATCH_WORKER__WEB_PORT"])
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "worker"],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        self.workers.append(proc)
        wait_for(lambda: worker_healthy(port), 60, "worker /healthz", proc)
        return proc

    def stop_worker(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def produce(self, topic: str, values: list[bytes], key: bytes | None = None) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap})
        for value in values:
            producer.produce(self.topic(topic), value, key=key)
        assert producer.flush(15) == 0

    def produce_keyed(self, topic: str, alerts: list[bytes]) -> None:
        """Canonical alerts keyed by service, as a well-behaved emitter does (series order)."""
        import json

        producer = Producer({"bootstrap.servers": self.bootstrap})
        for value in alerts:
            producer.produce(self.topic(topic), value, key=json.loads(value)["service"].encode())
        assert producer.flush(15) == 0

    def consumer(self, topic: str) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"test-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
                "max.poll.interval.ms": 6000,
                "log_level": 2,
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )
        consumer.subscribe([self.topic(topic)])
        self.consumers.append(consumer)
        return consumer

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def store(self) -> RedisStore:
        """The tenant's store, as its workers see it."""
        return RedisStore.from_url(self.redis_url, prefix=f"{self.ns}:")


def wait_for(
    check: Callable[[], Any],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"worker exited ({proc.returncode}) while waiting for {what}")
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def collect(
    consumer: Consumer, until: Callable[[list[Message]], bool], timeout: float
) -> list[Message]:
    """Poll messages until ``until(messages)`` holds; fail with what was seen otherwise."""
    seen: list[Message] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            seen.append(msg)
        if until(seen):
            return seen
    raise AssertionError(f"condition not met after {timeout:.0f} s; {len(seen)} messages seen")


def drain(consumer: Consumer, quiet_s: float = 3.0, timeout: float = 60.0) -> list[Message]:
    """Everything until the topic has been quiet for ``quiet_s``."""
    seen: list[Message] = []
    last = time.monotonic()
    deadline = last + timeout
    while time.monotonic() < deadline and time.monotonic() - last < quiet_s:
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            seen.append(msg)
            last = time.monotonic()
    return seen


_decode_event = msgspec.json.Decoder(IncidentEvent).decode


def final_incidents(messages: list[Message]) -> dict[str, Incident]:
    """The last state of each incident published on ``incidents`` and not merged into
    another."""
    out: dict[str, Incident] = {}
    for m in messages:
        ev = _decode_event(m.value())
        out[ev.incident.id] = ev.incident
    return {iid: inc for iid, inc in out.items() if not inc.merged_into}


def covered_alerts(store: RedisStore, messages: list[Message]) -> set[str]:
    """Alerts that are members (in Redis) of the incidents :func:`final_incidents` finds."""
    return {aid for iid in final_incidents(messages) for aid in store.incident_members(iid)}


def incident_of_each_alert(store: RedisStore, messages: list[Message]) -> dict[str, str]:
    """Alert id -> the final incident holding it (in Redis); fails if one is in two."""
    member_of: dict[str, str] = {}
    for iid in final_incidents(messages):
        for aid in store.incident_members(iid):
            assert aid not in member_of, f"alert {aid} in {member_of[aid]} and {iid}"
            member_of[aid] = iid
    return member_of


@pytest.fixture
def stack(broker: Service, redis_service: Service) -> Iterator[Stack]:
    s = Stack(
        bootstrap=broker.url,
        redis_url=redis_service.url,
        ns=f"t{uuid.uuid4().hex[:8]}",
        topology=ROOT / "topologies" / "online-boutique.yaml",
    )
    yield s
    for consumer in s.consumers:
        consumer.close()
    for proc in s.workers:
        s.stop_worker(proc, signal.SIGKILL)
