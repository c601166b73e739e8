"""The worker's web pages: ``/metrics`` (Prometheus), ``/healthz`` (Redis reachable and no
partition stalled; 503 otherwise), ``/incidents`` and ``/incidents/<id>`` (the incident
pages for browsers, JSON for API clients: :mod:`pipeline.app.pages`), ``/oncall/...`` (who
is on call; ownership and overrides changed at run time: :mod:`pipeline.app.oncall_api`)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from prometheus_client import CollectorRegistry, generate_latest

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.liveness import Liveness
from pipeline.app.oncall_api import add_oncall_pages
from pipeline.app.pages.handlers import IncidentPages
from pipeline.app.pages.reads import PageReads
from pipeline.domain.topology import Topology


def add_pages(
    app: faust.App,
    registry: CollectorRegistry,
    store: RedisStore,
    liveness: Liveness,
    topology: Topology,
) -> PageReads:
    """Register the pages; returns the incident pages' reads (close them on shutdown)."""
    reads = PageReads(store)
    pages = IncidentPages(reads, topology)
    add_oncall_pages(app, store)

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

    @app.page("/incidents")
    async def incidents(web: Any, request: Any) -> Any:
        return await pages.listing(web, request)

    @app.page("/incidents/{incident_id}")
    async def incident(web: Any, request: Any, incident_id: str) -> Any:
        return await pages.incident(web, request, incident_id)

    return reads
