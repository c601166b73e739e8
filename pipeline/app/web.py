"""The worker's web pages: ``/metrics`` (Prometheus) and ``/healthz`` (Redis reachable and no
partition stalled; 503 otherwise)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from prometheus_client import CollectorRegistry, generate_latest

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.liveness import Liveness


def add_pages(
    app: faust.App, registry: CollectorRegistry, store: RedisStore, liveness: Liveness
) -> None:
    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), content_type="text/plain")

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        try:
            redis_ok = await asyncio.to_thread(store.ping)
        except Exception:
            redis_ok = False
        stalled = await liveness.stalled_partitions()
        ok = redis_ok and not stalled
        body = {"status": "ok" if ok else "degraded", "redis": redis_ok, "stalled": stalled}
        return web.json(body, status=200 if ok else 503)
