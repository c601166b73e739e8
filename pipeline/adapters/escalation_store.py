"""Escalations in Redis: one record per incident and, per owner, a sorted set of when each
of its escalations is next due.

Keys (under the store prefix): ``oncall:esc:<incident>`` the record
(:class:`~pipeline.domain.oncall.tracking.EscalationRecord` as JSON; kept ``ended_ttl_s``
after the escalation ended, so a replayed ``opened`` does not start it again) |
``oncall:esc-due:<owner>`` incident -> due time (epoch seconds; 0 while pages wait in the
outbox). The owner is the by-domain partition whose worker runs the escalation, so a worker
reads only the due sets of the partitions it holds and a rebalance hands them over with the
partition.

Writes are compare-and-set on the record's revision, the record and its due entry in one
Lua script (atomic, one round trip): of two writers that read the same revision (a rebalance
overlap), one wins and the other sees ``False`` and reads again.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import redis

from pipeline.domain.oncall.tracking import EscalationRecord

_decoder = msgspec.json.Decoder(EscalationRecord)
_encoder = msgspec.json.Encoder()
#: due entries read per owner per call
DUE_BATCH = 200


#: compare-and-set of a record and its due entry: KEYS record, due set; ARGV expected
#: revision (-1: none stored), record, due time ('' : not due, the record expires), TTL,
#: incident id. Returns 1 when written.
SWAP = """
local current = redis.call('GET', KEYS[1])
local rev = -1
if current then rev = tonumber(cjson.decode(current)['rev']) end
if rev ~= tonumber(ARGV[1]) then return 0 end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[4])
  redis.call('ZREM', KEYS[2], ARGV[5])
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
end
return 1
"""


class EscalationStore:
    def __init__(self, client: redis.Redis, prefix: str = "sw:", ended_ttl_s: int = 7 * 86400):
        self.r = client
        self.base = f"{prefix}oncall:"
        self.ended_ttl_s = ended_ttl_s
        self._swap = client.register_script(SWAP)

    def _key(self, incident: str) -> str:
        return f"{self.base}esc:{incident}"

    def _due_key(self, owner: str) -> str:
        return f"{self.base}esc-due:{owner}"

    def load(self, incidents: Iterable[str]) -> dict[str, EscalationRecord]:
        """The stored records of ``incidents`` (those that have one)."""
        ids = list(incidents)
        if not ids:
            return {}
        values = self.r.mget([self._key(i) for i in ids])
        return {i: _decoder.decode(v) for i, v in zip(ids, values, strict=True) if v}

    def due(self, owners: Iterable[str], now: float) -> dict[str, list[str]]:
        """Per owner, the incidents whose escalation is due at ``now`` (earliest first)."""
        names = list(owners)
        pipe = self.r.pipeline(transaction=False)
        for owner in names:
            pipe.zrangebyscore(self._due_key(owner), "-inf", now, start=0, num=DUE_BATCH)
        return {
            owner: [v.decode() if isinstance(v, bytes) else v for v in ids]
            for owner, ids in zip(names, pipe.execute(), strict=True)
            if ids
        }

    def swap(self, expected_rev: int | None, record: EscalationRecord) -> bool:
        """Write ``record`` if the stored one still has revision ``expected_rev`` (None:
        none is stored); its due entry changes in the same atomic step."""
        return self.swap_many([(expected_rev, record)])[0]

    def swap_many(self, writes: list[tuple[int | None, EscalationRecord]]) -> list[bool]:
        """:meth:`swap` for several records in one round trip; which ones were written."""
        pipe = self.r.pipeline(transaction=False)
        for expected_rev, record in writes:
            when = record.due
            self._swap(
                keys=[self._key(record.incident), self._due_key(record.owner)],
                args=[
                    -1 if expected_rev is None else expected_rev,
                    _encoder.encode(record),
                    "" if when is None else repr(when),
                    self.ended_ttl_s,
                    record.incident,
                ],
                client=pipe,
            )
        return [bool(result) for result in pipe.execute()]

    def forget(self, owner: str, incident: str) -> None:
        """Drop a due entry whose record is gone (expired or deleted)."""
        self.r.zrem(self._due_key(owner), incident)
