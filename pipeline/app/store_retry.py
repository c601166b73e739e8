"""Redis calls that wait for Redis: retried with backoff while it is unreachable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import structlog

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.metrics import Metrics

_T = TypeVar("_T")
log = structlog.get_logger("stormwatch.worker")


def backoff() -> Iterator[float]:
    """Seconds to wait between attempts: 0.1 doubling to 5, then 5 for ever."""
    delay = 0.1
    while True:
        yield delay
        delay = min(2 * delay, 5.0)


class StoreRetry:
    """Run store calls in a thread, waiting out an unreachable Redis."""

    def __init__(self, store: RedisStore, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics

    async def call(self, during: str, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` in a thread; while the store is unreachable, wait and try again
        (0.1 s doubling to 5 s). Steps call it before they change any state, so waiting
        holds their messages back without losing them; /healthz reports Redis down."""
        failing = False
        for delay in backoff():
            try:
                result = await asyncio.to_thread(fn, *args)
            except self.store.unavailable as exc:
                self.metrics.store_retries.labels(during).inc()
                if not failing:
                    log.warning("Redis unreachable; waiting for it", during=during, error=str(exc))
                    failing = True
                await asyncio.sleep(delay)
                continue
            if failing:
                log.warning("Redis reachable again", during=during)
            return result
        raise AssertionError("unreachable: backoff() never ends")
