"""Health as metrics, sampled on a timer: consumer lag per topic, stalled partitions and
readiness (what ``/healthz`` answers), so Prometheus sees them without probing ``/healthz``."""

from __future__ import annotations

import asyncio

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.liveness import Liveness
from pipeline.app.metrics import Metrics


class HealthSampler:
    def __init__(self, liveness: Liveness, store: RedisStore, metrics: Metrics) -> None:
        self.liveness = liveness
        self.store = store
        self.metrics = metrics

    async def sample(self) -> None:
        """One sample (a timer runs it: never two at once). A probe the broker did not answer
        gives no verdict, as for ``/healthz``: lag and stalled partitions stay as last set."""
        try:
            redis_ok = bool(await asyncio.to_thread(self.store.ping))
        except Exception:
            redis_ok = False
        probe = await self.liveness.probe()
        if probe.answered:
            self.metrics.lag(probe.lag)
            self.metrics.stalled_partitions.set(len(probe.stalled))
        self.metrics.ready.set(1 if redis_ok and not probe.stalled else 0)
