"""Escalations in Redis: one record per incident and, per owner, a sorted set of when each
of its escalations is next due.

Keys (under the store prefix): ``oncall:esc:<incident>`` the record
(:class:`~pipeline.domain.oncall.tracking.EscalationRecord` as JSON; kept ``ended_ttl_s``
after the escalation ended, so a replayed ``opened`` does not start it again) |
``oncall:esc-due:<owner>`` incident -> due time (epoch seconds; 0 while pages wait in the
outbox). The owner is the by-domain partition whose worker runs the escalation, so a worker
reads only the due sets of the partitions it holds and a rebalance hands them over with the
partition.

Writes are compare-and-set on the record's revision (``WATCH``/``MULTI``), the record and its
due entry in one transaction: of two writers that read the same revision (a rebalance
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


class EscalationStore:
    def __init__(self, client: redis.Redis, prefix: str = "sw:", ended_ttl_s: int = 7 * 86400):
        self.r = client
        self.base = f"{prefix}oncall:"
        self.ended_ttl_s = ended_ttl_s

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
        none is stored); its due entry changes in the same transaction."""
        key, due = self._key(record.incident), self._due_key(record.owner)
        with self.r.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)
                current = pipe.get(key)
                rev = _decoder.decode(current).rev if current else None
                if rev != expected_rev:
                    pipe.unwatch()
                    return False
                pipe.multi()
                when = record.due
                if when is None:
                    pipe.set(key, _encoder.encode(record), ex=self.ended_ttl_s)
                    pipe.zrem(due, record.incident)
                else:
                    pipe.set(key, _encoder.encode(record))
                    pipe.zadd(due, {record.incident: when})
                pipe.execute()
            except redis.WatchError:
                return False
        return True

    def forget(self, owner: str, incident: str) -> None:
        """Drop a due entry whose record is gone (expired or deleted)."""
        self.r.zrem(self._due_key(owner), incident)
