"""The worker's web pages: ``/metrics`` (Prometheus), ``/healthz`` (Redis reachable and no
partition stalled; 503 otherwise) and ``/incidents/<id>`` (the incident with its full
membership, from Redis; 404 when unknown)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from prometheus_client import CollectorRegistry, generate_latest

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.incident_lookup import incident_document
from pipeline.app.liveness import Liveness
from pipeline.app.store_retry import StoreRetry


def add_pages(
    app: faust.App,
    registry: CollectorRegistry,
    store: RedisStore,
    retry: StoreRetry,
    liveness: Liveness,
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

    @app.page("/incidents/{incident_id}")
    async def incident(web: Any, request: Any, incident_id: str) -> Any:
        doc = await retry.call("lookup", incident_document, store, incident_id)
        if doc is None:
            return web.json({"error": f"no incident {incident_id!r}"}, status=404)
        return web.json(doc)
