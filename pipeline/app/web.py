"""The worker's web pages: ``/metrics`` (Prometheus), ``/healthz`` (Redis reachable and no
partition stalled; 503 otherwise), ``/incidents`` and ``/incidents/<id>`` (the incident
pages for browsers, JSON for API clients: :mod:`pipeline.app.pages`), ``/oncall/...`` (who
is on call; ownership and overrides changed at run time: :mod:`pipeline.app.oncall_api`),
``/insights`` (the last insights report, :mod:`pipeline.app.insights`). Writes need a bearer
token, reads are open unless the operator protects them: :mod:`pipeline.app.web_auth`, a
middleware installed with the Faust app (:class:`pipeline.app.worker.Worker`)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from prometheus_client import CollectorRegistry, generate_latest

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.insights import LiveInsights
from pipeline.app.liveness import Liveness
from pipeline.app.oncall_api import add_oncall_pages
from pipeline.app.pages.handlers import (
    HTML_HEADERS,
    JSON_HEADERS,
    RETRY_AFTER_S,
    IncidentPages,
    wants_html,
)
from pipeline.app.pages.reads import PageReads
from pipeline.domain.topology import Topology


def add_pages(
    app: faust.App,
    registry: CollectorRegistry,
    store: RedisStore,
    liveness: Liveness,
    topology: Topology,
    insights: LiveInsights | None = None,
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

    @app.page("/insights")
    async def insights_page(web: Any, request: Any) -> Any:
        last = insights.last if insights is not None else None
        if last is None:
            why = (
                (
                    "the first insights report is not built yet"
                    if insights.leads
                    else "another worker holds the insights lease and serves them (standby)"
                )
                if insights is not None
                else "live insights are off here (no insights role, or "
                "STORMWATCH_INSIGHTS__REFRESH_S=0)"
            )
            headers = {"Retry-After": str(RETRY_AFTER_S)} if insights is not None else {}
            return web.json({"error": why}, status=503, headers={**JSON_HEADERS, **headers})
        if wants_html(request):
            return web.html(last.html, headers=HTML_HEADERS)
        assert insights is not None
        return web.json(insights.document(), headers=JSON_HEADERS)

    return reads
