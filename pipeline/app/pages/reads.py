"""What the incident pages read from Redis: off the event loop, bounded in time.

Reads run on a small thread pool of their own (a hung Redis never takes the threads the
worker's own store calls use) with a client whose connects and calls give up after
``timeout_s``; a read that has not answered by then raises :class:`PagesUnavailable`, and
the page answers 503 at once instead of waiting for Redis as the worker's steps do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import redis

from pipeline.adapters.redis_store import RecentIncidents, RedisStore
from pipeline.adapters.remediation.redis_state import RedisRemediationState
from pipeline.app.incident_lookup import incident_document

_T = TypeVar("_T")

#: threads for page reads: a few pages at a time, never the worker's own pool
PAGE_THREADS = 2


class PagesUnavailable(RuntimeError):
    """Redis did not answer a page's read in time (or refused it); the message says why."""


class PageReads:
    def __init__(self, store: RedisStore, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self.store = store.with_timeout(timeout_s)
        self.pool = ThreadPoolExecutor(PAGE_THREADS, thread_name_prefix="stormwatch-pages")

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self.pool, fn, *args), self.timeout_s + 0.5
            )
        except TimeoutError:
            raise PagesUnavailable(
                f"Redis did not answer within {self.timeout_s + 0.5:g} s"
            ) from None
        except redis.RedisError as exc:
            raise PagesUnavailable(f"Redis is unavailable ({exc})") from None

    async def document(self, incident_id: str) -> dict[str, Any] | None:
        """The incident with its full membership (``incident_document``); None if unknown."""
        return await self._call(incident_document, self.store, incident_id)

    async def record(self, incident_id: str) -> tuple[bytes, int] | None:
        """The incident's record and how many member alert ids are recorded for it (its
        own and those of incidents merged into it); None if unknown."""
        return await self._call(self._record, incident_id)

    def _record(self, incident_id: str) -> tuple[bytes, int] | None:
        record = self.store.get_incident(incident_id)
        if record is None:
            return None
        return record, len(self.store.incident_members(incident_id))

    async def trail(self, incident_id: str) -> list[bytes]:
        """The incident's remediation audit records, oldest first (docs/remediation.md)."""
        return await self._call(self._trail, incident_id)

    def _trail(self, incident_id: str) -> list[bytes]:
        return RedisRemediationState(self.store.r, prefix=self.store.prefix).audit(incident_id)

    async def recent(self, limit: int) -> RecentIncidents:
        return await self._call(self.store.recent_incidents, limit)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
