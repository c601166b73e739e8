"""The worker's incident pages: ``/incidents`` and ``/incidents/<id>``, HTML for browsers and
JSON for API clients.

A request that accepts ``text/html`` (a browser) gets the page; any other gets JSON, as
before; ``?format=html`` or ``?format=json`` overrides. Reads go through
:class:`~pipeline.app.pages.reads.PageReads` (never on the event loop, bounded in time):
when Redis does not answer, the answer is 503 with ``Retry-After`` at once. Rendering runs
on the same threads, so a big incident's page does not hold the worker's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from pipeline.adapters.redis_store import RECENT_KEPT, RecentIncidents
from pipeline.app.pages.reads import PageReads, PagesUnavailable
from pipeline.app.pages.render import error_html, incident_html, list_html, remediation_rows
from pipeline.app.pages.view import (
    ListView,
    RecordError,
    decode_record,
    incident_view,
    list_view,
)
from pipeline.domain.topology import Topology

log = structlog.get_logger("stormwatch.web")

#: incidents listed by default
DEFAULT_LIMIT = 100
#: seconds a client should wait before asking again when Redis is down
RETRY_AFTER_S = 5
#: no script may run on these pages, whatever an alert carries
HTML_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Vary": "Accept",
}
JSON_HEADERS = {"Cache-Control": "no-store", "Vary": "Accept"}


def wants_html(request: Any) -> bool:
    """Whether to answer with HTML: ``?format=`` if given, else whether the client accepts
    ``text/html`` (browsers do, API clients usually do not)."""
    fmt = request.query.get("format")
    if fmt in ("html", "json"):
        return bool(fmt == "html")
    return "text/html" in request.headers.get("Accept", "")


class IncidentPages:
    def __init__(
        self,
        reads: PageReads,
        topology: Topology,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.reads = reads
        self.topology = topology
        self.now = now

    async def listing(self, web: Any, request: Any) -> Any:
        html = wants_html(request)
        raw = request.query.get("limit", str(DEFAULT_LIMIT))
        if not raw.isdigit() or not 1 <= int(raw) <= RECENT_KEPT:
            return self._error(
                web, html, 400, "Bad limit", f"limit must be 1-{RECENT_KEPT}, not {raw!r}"
            )
        limit = int(raw)
        try:
            recent = await self.reads.recent(limit)
        except PagesUnavailable as exc:
            return self._unavailable(web, html, str(exc))
        view = await self._off_loop(_list_of, recent, self.now())
        if not html:
            return web.json(_list_json(view), headers=JSON_HEADERS)
        body = await self._off_loop(list_html, view, limit, RECENT_KEPT)
        return web.html(body, headers=HTML_HEADERS)

    async def incident(self, web: Any, request: Any, incident_id: str) -> Any:
        html = wants_html(request)
        try:
            if not html:
                doc = await self.reads.document(incident_id)
                if doc is None:
                    return web.json({"error": f"no incident {incident_id!r}"}, status=404)
                return web.json(doc, headers=JSON_HEADERS)
            found = await self.reads.record(incident_id)
            trail = await self.reads.trail(incident_id) if found is not None else []
        except PagesUnavailable as exc:
            return self._unavailable(web, html, str(exc))
        if found is None:
            return self._error(
                web,
                True,
                404,
                "No such incident",
                f"There is no incident {incident_id!r} in Redis: it never existed, or it "
                "closed longer ago than redis.incident_ttl_s and expired.",
            )
        record, members = found
        try:
            body = await self._off_loop(self._incident_html, record, members, trail)
        except RecordError as exc:
            log.error("incident record does not decode", incident=incident_id, error=str(exc))
            return self._error(web, True, 500, "Unreadable incident record", str(exc))
        return web.html(body, headers=HTML_HEADERS)

    def _incident_html(self, record: bytes, members: int, trail: list[bytes]) -> str:
        inc = decode_record(record)
        view = incident_view(inc, self.topology, self.now(), members)
        return incident_html(view, remediation_rows(trail))

    async def _off_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.reads.pool, fn, *args)

    def _unavailable(self, web: Any, html: bool, why: str) -> Any:
        return self._error(
            web,
            html,
            503,
            "Redis unavailable",
            f"Cannot read the incidents from Redis: {why}.",
            hint=f"The worker keeps its messages until Redis is back; try again in "
            f"{RETRY_AFTER_S} s. /healthz reports Redis as well.",
            retry_after=True,
        )

    def _error(
        self,
        web: Any,
        html: bool,
        status: int,
        title: str,
        message: str,
        hint: str = "",
        retry_after: bool = False,
    ) -> Any:
        extra = {"Retry-After": str(RETRY_AFTER_S)} if retry_after else {}
        if html:
            body = error_html(status, title, message, hint)
            return web.html(body, status=status, headers={**HTML_HEADERS, **extra})
        return web.json({"error": message}, status=status, headers={**JSON_HEADERS, **extra})


def _list_of(recent: RecentIncidents, now: datetime) -> ListView:
    return list_view(recent.ids, recent.open, recent.records, recent.open_count, now)


def _list_json(view: ListView) -> dict[str, Any]:
    return {
        "open_count": view.open_count,
        "open": msgspec.to_builtins(view.open),
        "recently_closed": msgspec.to_builtins(view.closed),
    }
