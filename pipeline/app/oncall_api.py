"""On-call over HTTP on the worker's web server: who is on call, and run-time changes to
ownership and overrides (stored in Redis, so every worker sees them at once).

| method and path | body | answer |
|---|---|---|
| ``GET /oncall/who?team=T`` (or ``service=S``; ``at=ISO``) | | ``{"team", "oncall": [answers]}`` |
| ``GET /oncall/owners`` | | ``{"services": {service: team}}`` |
| ``PUT /oncall/owners/<service>`` | ``{"team": T}`` (null: no owner) | ``{"service", "team"}`` |
| ``GET /oncall/schedules/<s>/overrides`` | | ``{"overrides": [...]}`` |
| ``POST /oncall/schedules/<s>/overrides`` | an override (docs/oncall.md) | 201 + the override |
| ``DELETE /oncall/schedules/<s>/overrides/<id>`` | | 204, or 404 |
| ``GET /oncall/feeds/schedule/<s>.ics``, ``/oncall/feeds/person/<p>.ics`` | | an iCalendar feed |

The writes (PUT, POST, DELETE) need ``Authorization: Bearer <token>`` (401 without a valid
one, 403 when the worker has no token configured): :mod:`pipeline.app.web_auth`, applied
before these handlers. Bad requests get 400 with ``{"error": "<one line>"}``; unknown teams,
services or schedules 404; Redis not answering within ``timeout_s`` 503 with
``Retry-After``. Redis calls run on a small thread pool of their own with a client that
gives up after ``timeout_s``, as the incident pages' reads do. The parsed directory is
cached until its version in Redis moves.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import faust
import redis
from faust.web import Request, Response, View

from pipeline.adapters.oncall_store import OnCallStore
from pipeline.adapters.redis_store import RedisStore
from pipeline.domain.oncall import Directory, DirectoryError, timeline
from pipeline.domain.oncall.ical import export_ical

_T = TypeVar("_T")
Answer = tuple[int, Any]


class OnCallApi:
    """The endpoints' logic, free of the web framework: each returns (status, JSON body)."""

    def __init__(self, store: OnCallStore, timeout_s: float = 2.0) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="stormwatch-oncall")
        self._cached: tuple[int, Directory] | None = None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(
            loop.run_in_executor(self.pool, fn, *args), self.timeout_s + 0.5
        )

    def _directory(self) -> Directory:
        version = self.store.version()
        if self._cached is None or self._cached[0] != version:
            self._cached = (version, self.store.directory())
        return self._cached[1]

    async def guarded(self, fn: Callable[[], Any]) -> Answer:
        """Run one endpoint, turning failures into their status codes."""
        try:
            return await fn()
        except (TimeoutError, redis.RedisError) as exc:
            reason = str(exc) or f"no answer within {self.timeout_s + 0.5:g} s"
            return 503, {"error": f"Redis is unavailable ({reason})"}
        except DirectoryError as exc:
            return 404, {"error": str(exc)}
        except ValueError as exc:
            return 400, {"error": str(exc)}

    async def who(self, query: Mapping[str, str]) -> Answer:
        team, service = query.get("team"), query.get("service")
        if (team is None) == (service is None):
            return 400, {"error": "give one of ?team=T or ?service=S"}
        at = _instant(query.get("at"))
        directory = await self._call(self._directory)
        if service is not None:
            team = directory.owner(service)
            if team is None:
                return 404, {"error": f"service {service!r} has no owner"}
        assert team is not None
        answers = directory.who(team, at)
        items = []
        for answer in answers:
            person = directory.people.get(answer.person or "")
            items.append({**answer.to_dict(), "contact": dict(person.handles) if person else {}})
        return 200, {"team": team, "oncall": items}

    async def feed(self, kind: str, name: str, query: Mapping[str, str]) -> tuple[int, Any]:
        """An iCalendar feed (bytes) of a schedule or a person, 7 days back, 90 ahead (or
        ``?from=ISO&days=N``)."""
        name = name.removesuffix(".ics")
        now = datetime.now(UTC)
        start = _instant(query.get("from")) if query.get("from") else now - timedelta(days=7)
        days = query.get("days", "97")
        if not days.isdigit() or not 0 < int(days) <= 800:
            raise ValueError(f"days={days!r} must be a whole number from 1 to 800")
        end = start + timedelta(days=int(days))
        directory = await self._call(self._directory)
        if kind == "schedule":
            segments = timeline(directory.schedule(name), start, end)
            title = name
        else:
            segments = directory.shifts_of(name, start, end)
            title = f"on call: {directory.people[name].display}"
        return 200, export_ical(title, segments, directory.people, now)

    async def owners(self) -> Answer:
        directory = await self._call(self._directory)
        return 200, {"services": dict(directory.owners)}

    async def set_owner(self, service: str, body: bytes) -> Answer:
        data = _json(body)
        if "team" not in data:
            return 400, {"error": 'body must be {"team": "<team id>"} (null: no owner)'}
        team = data["team"]
        if team is not None and not isinstance(team, str):
            return 400, {"error": "team must be a string or null"}
        await self._call(self.store.set_owner, service, team)
        return 200, {"service": service, "team": team}

    async def overrides(self, schedule: str) -> Answer:
        return 200, {"overrides": await self._call(self.store.overrides, schedule)}

    async def add_override(self, schedule: str, body: bytes) -> Answer:
        data = {"id": f"o-{uuid.uuid4().hex[:8]}", **_json(body)}
        return 201, await self._call(self.store.add_override, schedule, data)

    async def remove_override(self, schedule: str, override_id: str) -> Answer:
        if await self._call(self.store.remove_override, schedule, override_id):
            return 204, None
        return 404, {"error": f"schedule {schedule!r} has no override {override_id!r}"}


def _instant(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    text = value.replace("Z", "+00:00")
    # an unencoded '+' in a query string arrives as a space: 12:00:00 02:00 means +02:00
    candidates = [text, text[::-1].replace(" ", "+", 1)[::-1]] if " " in text else [text]
    for candidate in candidates:
        try:
            parsed = datetime.fromisoformat(candidate)
            break
        except ValueError:
            continue
    else:
        raise ValueError(f"at={value!r} is not an ISO 8601 time like 2026-03-09T12:00Z")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def add_oncall_pages(app: faust.App, store: RedisStore) -> OnCallApi | None:
    """Register the /oncall endpoints; returns the API (close it on shutdown), or None for a
    store without Redis (the in-memory store of unit tests has no directory to serve)."""
    timed = store.with_timeout(2.0)
    client = getattr(timed, "r", None)
    if client is None:
        return None
    api = OnCallApi(OnCallStore(client, timed.prefix))

    def reply(view: View, answer: Answer) -> Response:
        status, body = answer
        if status == 204:
            return view.bytes(b"", status=204)
        headers = {"Retry-After": "5"} if status == 503 else None
        return view.json(body, status=status, headers=headers)

    @app.page("/oncall/who")
    class Who(View):
        async def get(self, request: Request) -> Response:
            return reply(self, await api.guarded(lambda: api.who(request.query)))

    @app.page("/oncall/owners")
    class Owners(View):
        async def get(self, request: Request) -> Response:
            return reply(self, await api.guarded(api.owners))

    @app.page("/oncall/owners/{service}")
    class Owner(View):
        async def put(self, request: Request, service: str) -> Response:
            body = await self.read_request_content(request)
            return reply(self, await api.guarded(lambda: api.set_owner(service, body)))

    @app.page("/oncall/schedules/{schedule}/overrides")
    class Overrides(View):
        async def get(self, request: Request, schedule: str) -> Response:
            return reply(self, await api.guarded(lambda: api.overrides(schedule)))

        async def post(self, request: Request, schedule: str) -> Response:
            body = await self.read_request_content(request)
            return reply(self, await api.guarded(lambda: api.add_override(schedule, body)))

    @app.page("/oncall/schedules/{schedule}/overrides/{override_id}")
    class Override(View):
        async def delete(self, request: Request, schedule: str, override_id: str) -> Response:
            answer = await api.guarded(lambda: api.remove_override(schedule, override_id))
            return reply(self, answer)

    @app.page("/oncall/feeds/{kind}/{name}")
    class Feed(View):
        async def get(self, request: Request, kind: str, name: str) -> Response:
            if kind not in ("schedule", "person"):
                return self.json(
                    {"error": "feeds are /schedule/<s>.ics or /person/<p>.ics"}, status=404
                )
            status, body = await api.guarded(lambda: api.feed(kind, name, request.query))
            if status != 200:
                return reply(self, (status, body))
            return self.bytes(body, content_type="text/calendar")

    return api
