"""The /oncall endpoints' logic when Redis cannot be reached: 503 with a reason, at once."""

from __future__ import annotations

import time

import redis

from pipeline.adapters.oncall_store import OnCallStore
from pipeline.app.localstack import free_port
from pipeline.app.oncall_api import OnCallApi, _instant


async def test_unreachable_redis_answers_503() -> None:
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    api = OnCallApi(OnCallStore(client), timeout_s=0.5)
    started = time.monotonic()
    status, body = await api.guarded(lambda: api.who({"team": "payments"}))
    assert status == 503 and body["error"].startswith("Redis is unavailable")
    status, body = await api.guarded(lambda: api.set_owner("frontend", b'{"team": "web"}'))
    assert status == 503
    assert time.monotonic() - started < 5
    status, body = await api.guarded(lambda: api.set_owner("frontend", b"[1]"))
    assert (status, body) == (400, {"error": "the body must be a JSON object"})
    api.close()


def test_query_times_survive_an_unencoded_plus() -> None:
    assert _instant("2026-03-09T12:00:00 02:00") == _instant("2026-03-09T10:00:00Z")
    assert _instant("2026-03-09 12:00") == _instant("2026-03-09T12:00Z")
    assert _instant("2026-03-09T12:00-04:00") == _instant("2026-03-09T16:00Z")
