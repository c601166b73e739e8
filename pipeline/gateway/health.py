"""``/healthz``: is the broker reachable and does it list the alerts topic?"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: dict[str, Any]


def admin_client(client_config: dict[str, Any]) -> AdminClient:
    """The gateway's admin client (probes, topic creation). Its metadata requests never
    auto-create a topic (that would take the broker's default partitions, not ours). It
    logs only librdkafka's critical messages: while the broker is down a pending metadata
    request reconnects many times a second, and the probe reports the outage anyway."""
    return AdminClient({**client_config, "allow.auto.create.topics": False, "log_level": 2})


def kafka_check(admin: AdminClient, topic: str, timeout_s: float) -> Callable[[], Health]:
    """A blocking metadata request for ``topic`` (run it in a thread)."""

    def check() -> Health:
        try:
            meta = admin.list_topics(topic, timeout=timeout_s).topics.get(topic)
        except KafkaException as exc:
            return Health(False, {"broker": f"unreachable: {exc.args[0]}"})
        if meta is None or meta.error is not None:
            why = meta.error.name() if meta is not None and meta.error else "not listed"
            return Health(False, {"broker": "reachable", "topic": topic, "error": why})
        return Health(
            True, {"broker": "reachable", "topic": topic, "partitions": len(meta.partitions)}
        )

    return check


class BrokerProbe:
    """Runs ``check`` at most once per ``cache_s`` and never twice at once, so probes and
    scrapes hitting ``/healthz`` cost the broker one metadata request a second at most."""

    def __init__(self, check: Callable[[], Health], cache_s: float = 1.0) -> None:
        self._check = check
        self._cache_s = cache_s
        self._last: tuple[float, Health] | None = None
        self._lock = asyncio.Lock()

    async def health(self) -> Health:
        async with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= self._cache_s:
                self._last = (now, await asyncio.to_thread(self._check))
            return self._last[1]
