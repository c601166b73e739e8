"""A Redis lease: one process of many holds a role at a time (``SET NX PX`` with renewal).

The holder's token is the key's value; taking and renewing is one script (take it when
free, extend it when it is ours), and releasing deletes it only if it is still ours, so a
process whose lease lapsed can never extend or end its successor's. A holder that stops
renewing (killed, hung, cut off from Redis) loses the lease after ``ttl_s``, and a stand-by
takes it at its next try.
"""

from __future__ import annotations

import uuid
from typing import Any

import redis

#: take the key when free, extend it when it holds ARGV[1] (the token); 1 when held
HOLD_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if cur == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""

#: delete the key only while it holds ARGV[1]
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    """The lease ``key`` for this process (a token of its own)."""

    def __init__(self, client: redis.Redis, key: str, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("a lease needs a positive ttl_s")
        self.r = client
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = uuid.uuid4().hex
        self._hold = client.register_script(HOLD_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)

    def hold(self) -> bool:
        """Take the lease when it is free or renew it when it is ours; False while another
        process holds it."""
        return bool(self._hold(keys=[self.key], args=[self.token, self.ttl_ms]))

    def holder(self) -> str | None:
        """The token of the process holding the lease now (None when it is free)."""
        value: Any = self.r.get(self.key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def release(self) -> None:
        """Give the lease up at once, if it is still ours."""
        self._release(keys=[self.key], args=[self.token])
