"""Redis-backed StateStore: dedup states (with TTL), checkpoints, incidents, feedback.

Keys (prefix configurable, default ``sw:``):
``dd:<fingerprint>`` alert series status (TTL) | ``ckpt:<name>`` hash {data, version, saved_at};
``data`` of ``compress_above`` bytes or more is stored zlib-compressed behind ``ZLIB_MAGIC``
(:func:`pack_checkpoint`; a correlator's state in a storm is megabytes, about 4x smaller)
| ``inc:<id>`` incident JSON (bounded view) | ``mem:<id>`` list of member alert ids, the newest
``max_members`` | ``mfrom:<id>`` set of incidents merged into it (their members are its
members too); these three expire ``incident_ttl_s`` after the incident closed (resolved or
merged)
| ``open`` set of open incident ids | ``recent`` sorted set: incident id -> when its record
was last written (epoch seconds), the newest ``RECENT_KEPT`` (the incident pages list them)
| ``fb:<id>`` feedback list | ``fbids:<id>`` set of the ids of the messages in it (their
topic/partition/offset), so a message read again after a crash is not stored twice; both
expire ``incident_ttl_s`` after the incident closed, or after feedback that came once it had
| ``ctl:<partition>`` stream of the merge stage's controls for a by-domain partition (split
topologies; trimmed once the partition's state covers them) | ``mprog`` hash: partition -> event
time the merge stage has seen it reach (domains pace each other with it)
| ``imarks`` hash: raw partition -> "event time, behind (0/1), wall time reported" (ingest
processes align their reading with each other's with it)
| ``lease:insights`` the token of the one process feeding the insights
(:mod:`pipeline.adapters.lease`); its ``ckpt:insights`` is written only while it holds it
| ``insights:edges`` the relations of the learned-edges mode (JSON, written by that process).
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pipeline.domain.correlate.journal import Joined, MembershipOp, Merged, Moved

#: incidents the ``recent`` index keeps (the most recently written records)
RECENT_KEPT = 1000
#: what starts a compressed checkpoint (no checkpoint format starts with a NUL byte: JSON,
#: msgpack maps and arrays, pickle and decimal offsets do not)
ZLIB_MAGIC = b"\x00swz"


def pack_checkpoint(data: bytes, compress_above: int) -> bytes:
    """``data`` as stored: zlib level 1 behind :data:`ZLIB_MAGIC` from ``compress_above``
    bytes on (0: never), when that is smaller."""
    if compress_above and len(data) >= compress_above:
        packed = ZLIB_MAGIC + zlib.compress(data, 1)
        if len(packed) < len(data):
            return packed
    return data


def unpack_checkpoint(stored: bytes) -> bytes:
    """What :func:`pack_checkpoint` stored, as it was given (older, uncompressed data as is)."""
    if stored.startswith(ZLIB_MAGIC):
        return zlib.decompress(stored[len(ZLIB_MAGIC) :])
    return stored


_SAVE_HELD = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'saved_at', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
"""


#: append the feedback message ARGV[2] to the list KEYS[1] unless its id ARGV[1] is in the set
#: KEYS[2] already (one script: a message redelivered after a crash, or a retried write that
#: did land, is stored once); 1 when appended
_RECORD_FEEDBACK = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
if redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return 1
"""


def feedback_message_id(data: bytes, source: str | None = None) -> str:
    """The id a feedback message is stored under: where it was read (``topic/partition/
    offset``), or without that its content's digest."""
    return source if source else "sha1:" + hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class RedisStore:
    #: errors that mean Redis is unreachable for now: the caller may wait and try again
    unavailable: ClassVar[tuple[type[Exception], ...]] = (
        redis.ConnectionError,
        redis.TimeoutError,
    )

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "sw:",
        dedup_ttl_s: int = 21600,
        incident_ttl_s: int = 30 * 86400,
        max_members: int = 100_000,
        compress_above: int = 65536,
    ) -> None:
        self.r = client
        self.compress_above = compress_above
        self.prefix = prefix
        self.ttl = dedup_ttl_s
        self.incident_ttl = incident_ttl_s
        self.max_members = max_members
        self.ops = 0  # Redis commands issued, for the benchmarks' ops-per-alert figure

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> RedisStore:
        """A store on ``url``; keyword arguments as for the constructor."""
        client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        return cls(client, **kw)

    def with_timeout(self, seconds: float) -> RedisStore:
        """The same store on a client of its own whose connects and calls give up after
        ``seconds`` (web pages answer while Redis hangs instead of waiting on it)."""
        pool = self.r.connection_pool
        kwargs = {
            **pool.connection_kwargs,
            "socket_timeout": seconds,
            "socket_connect_timeout": seconds,
            "retry_on_timeout": False,
            "retry": Retry(NoBackoff(), 0),
        }
        client = redis.Redis(
            connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
        )
        return RedisStore(
            client,
            prefix=self.prefix,
            dedup_ttl_s=self.ttl,
            incident_ttl_s=self.incident_ttl,
            max_members=self.max_members,
            compress_above=self.compress_above,
        )

    def ping(self) -> bool:
        return bool(self.r.ping())

    def dedup_states(self, fingerprints: Iterable[str]) -> dict[str, str | None]:
        fps = list(dict.fromkeys(fingerprints))
        if not fps:
            return {}
        self.ops += 1
        values = self.r.mget([f"{self.prefix}dd:{fp}" for fp in fps])
        return {
            fp: (_bytes(v).decode() if v is not None else None)
            for fp, v in zip(fps, values, strict=True)
        }

    def commit(
        self,
        *,
        dedup_states: Mapping[str, str],
        checkpoints: Mapping[str, bytes],
        incidents: Mapping[str, bytes],
        closed_incidents: Iterable[str] = (),
        membership: Sequence[MembershipOp] = (),
    ) -> None:
        p = self.prefix
        pipe = self.r.pipeline(transaction=True)
        for fp, status in dedup_states.items():
            pipe.set(f"{p}dd:{fp}", status, ex=self.ttl)
        now = time.time()
        for name, data in checkpoints.items():
            data = pack_checkpoint(data, self.compress_above)
            pipe.hset(f"{p}ckpt:{name}", mapping={"data": data, "saved_at": now})
            pipe.hincrby(f"{p}ckpt:{name}", "version", 1)
        if incidents:
            pipe.mset({f"{p}inc:{iid}": data for iid, data in incidents.items()})
            pipe.sadd(f"{p}open", *incidents)
            pipe.zadd(f"{p}recent", dict.fromkeys(incidents, now))
            pipe.zremrangebyrank(f"{p}recent", 0, -RECENT_KEPT - 1)
        for op in _coalesced(membership):
            if isinstance(op, Merged):
                pipe.sadd(f"{p}mfrom:{op.target}", op.source)
                continue
            if isinstance(op, Moved):
                for aid in op.alert_ids:
                    pipe.lrem(f"{p}mem:{op.source}", 0, aid)
            key = f"{p}mem:{op.incident if isinstance(op, Joined) else op.target}"
            pipe.rpush(key, *op.alert_ids[-self.max_members :])
            pipe.ltrim(key, -self.max_members, -1)
        closed = list(closed_incidents)
        if closed:
            pipe.srem(f"{p}open", *closed)
            # open incidents are bounded by how many are open; closed ones expire (a reopen
            # writes the record again, and the next close sets the expiry again)
            for iid in closed:
                for key in (
                    f"{p}inc:{iid}",
                    f"{p}mem:{iid}",
                    f"{p}mfrom:{iid}",
                    f"{p}fb:{iid}",
                    f"{p}fbids:{iid}",
                ):
                    pipe.expire(key, self.incident_ttl)
        self.ops += len(pipe)
        pipe.execute()

    def load_checkpoint(self, name: str) -> bytes | None:
        self.ops += 1
        value = self.r.hget(f"{self.prefix}ckpt:{name}", "data")
        return unpack_checkpoint(_bytes(value)) if value is not None else None

    def checkpoint_version(self, name: str) -> int:
        value = self.r.hget(f"{self.prefix}ckpt:{name}", "version")
        return int(value) if value is not None else 0

    def save_checkpoint(self, name: str, data: bytes) -> None:
        self.commit(dedup_states={}, checkpoints={name: data}, incidents={})

    def save_checkpoint_held(self, name: str, data: bytes, lease_key: str, token: str) -> bool:
        """:meth:`save_checkpoint`, only while the lease ``lease_key`` holds ``token`` (checked
        and written in one script: a process whose lease lapsed cannot overwrite its
        successor's checkpoint; :class:`pipeline.adapters.lease.RedisLease`). False when
        the lease is not held."""
        self.ops += 1
        key = f"{self.prefix}ckpt:{name}"
        data = pack_checkpoint(data, self.compress_above)
        return bool(self.r.eval(_SAVE_HELD, 2, key, lease_key, token, data, time.time()))

    def set_learned_relations(self, data: bytes) -> None:
        """The insights' learned-edges relations, for every correlating process."""
        self.ops += 1
        self.r.set(f"{self.prefix}insights:edges", data)

    def learned_relations(self) -> bytes | None:
        self.ops += 1
        value = self.r.get(f"{self.prefix}insights:edges")
        return _bytes(value) if value is not None else None

    def get_incident(self, incident_id: str) -> bytes | None:
        value = self.r.get(f"{self.prefix}inc:{incident_id}")
        return _bytes(value) if value is not None else None

    def incident_members(self, incident_id: str) -> list[str]:
        """Member alert ids of the incident, its own (the newest ``max_members``, oldest
        first) then those of the incidents merged into it."""
        out: list[str] = []
        todo, seen = [incident_id], set()
        while todo:
            iid = todo.pop(0)
            if iid in seen:
                continue
            seen.add(iid)
            items: Any = self.r.lrange(f"{self.prefix}mem:{iid}", 0, -1)
            out.extend(_bytes(v).decode() for v in items)
            merged: Any = self.r.smembers(f"{self.prefix}mfrom:{iid}")
            todo.extend(sorted(_bytes(v).decode() for v in merged))
        return out

    def open_incident_ids(self) -> list[str]:
        members: Any = self.r.smembers(f"{self.prefix}open")
        return sorted(_bytes(v).decode() for v in members)

    def recent_incidents(self, limit: int) -> RecentIncidents:
        """The ``limit`` incidents whose records were written last (newest first), which of
        them are open, their records (None: expired), and how many incidents are open."""
        p = self.prefix
        rows: Any = self.r.zrevrange(f"{p}recent", 0, max(0, limit - 1))
        ids = [_bytes(v).decode() for v in rows]
        pipe = self.r.pipeline(transaction=False)
        pipe.scard(f"{p}open")
        if ids:
            pipe.smismember(f"{p}open", ids)
            pipe.mget([f"{p}inc:{iid}" for iid in ids])
        out: Any = pipe.execute()
        records = [_bytes(v) if v is not None else None for v in out[2]] if ids else []
        is_open = {iid for iid, flag in zip(ids, out[1] if ids else [], strict=True) if flag}
        return RecentIncidents(ids=ids, open=is_open, records=records, open_count=int(out[0]))

    def incident_records(self, batch: int = 500) -> Iterator[bytes]:
        """Every incident record still stored (open ones, and closed ones until they expire),
        in no particular order; read with SCAN in batches, so Redis is never blocked."""
        p = self.prefix
        keys: list[Any] = []
        for key in self.r.scan_iter(match=f"{p}inc:*", count=batch):
            keys.append(key)
            if len(keys) >= batch:
                yield from self._records(keys)
                keys = []
        if keys:
            yield from self._records(keys)

    def _records(self, keys: list[Any]) -> Iterator[bytes]:
        values: Any = self.r.mget(keys)
        self.ops += 1
        yield from (_bytes(v) for v in values if v is not None)

    def append_controls(self, controls: Sequence[tuple[int, bytes]]) -> None:
        """Append (partition, control) pairs to the partitions' control streams."""
        if not controls:
            return
        pipe = self.r.pipeline(transaction=False)
        for partition, data in controls:
            pipe.xadd(f"{self.prefix}ctl:{partition}", {"c": data})
        self.ops += len(pipe)
        pipe.execute()

    def read_controls(self, partition: int, after: str) -> list[tuple[str, bytes]]:
        """Controls of ``partition`` after stream id ``after`` ("0": from the start)."""
        self.ops += 1
        rows: Any = self.r.xrange(
            f"{self.prefix}ctl:{partition}", min=f"({after}" if after != "0" else "-"
        )
        return [(_bytes(rid).decode(), _bytes(fields[b"c"])) for rid, fields in rows or []]

    def trim_controls(self, partition: int, upto: str) -> None:
        """Drop controls of ``partition`` up to and including stream id ``upto``."""
        if upto == "0":
            return
        ms, seq = (int(x) for x in upto.split("-"))
        self.ops += 1
        self.r.xtrim(f"{self.prefix}ctl:{partition}", minid=f"{ms}-{seq + 1}", approximate=False)

    def set_domain_progress(self, progress: Mapping[int, float]) -> None:
        """How far the merge stage has seen each by-domain partition (event time)."""
        if progress:
            self.ops += 1
            self.r.hset(
                f"{self.prefix}mprog", mapping={str(p): repr(t) for p, t in progress.items()}
            )

    def domain_progress(self) -> dict[int, float]:
        self.ops += 1
        raw: Any = self.r.hgetall(f"{self.prefix}mprog")
        return {int(_bytes(k)): float(_bytes(v)) for k, v in (raw or {}).items()}

    def share_ingest_marks(
        self, marks: Mapping[int, tuple[float, bool]], now: float
    ) -> dict[int, tuple[float, bool, float]]:
        """Report this process's raw partition marks (event time, behind) and read every
        process's (event time, behind, when reported), in one round trip."""
        self.ops += 1
        key = f"{self.prefix}imarks"
        pipe = self.r.pipeline(transaction=False)
        if marks:
            pipe.hset(
                key,
                mapping={str(p): f"{t!r} {int(b)} {now!r}" for p, (t, b) in marks.items()},
            )
        pipe.hgetall(key)
        raw: Any = pipe.execute()[-1]
        out = {}
        for k, v in (raw or {}).items():
            t, b, at = _bytes(v).split()
            out[int(_bytes(k))] = (float(t), b == b"1", float(at))
        return out

    def record_feedback(self, incident_id: str, data: bytes, source: str | None = None) -> bool:
        """Store a feedback message of the incident once: ``source`` is where it was read
        (``topic/partition/offset``; None: its content identifies it). False when it was
        stored already (read again after a crash, or a retried write that had landed)."""
        self.ops += 1
        key = f"{self.prefix}fb:{incident_id}"
        ids = f"{self.prefix}fbids:{incident_id}"
        return bool(
            self.r.eval(
                _RECORD_FEEDBACK,
                3,
                key,
                ids,
                f"{self.prefix}open",
                feedback_message_id(data, source),
                data,
                incident_id,
                self.incident_ttl,
            )
        )

    def feedback_for_many(self, incident_ids: Sequence[str]) -> list[list[bytes]]:
        """The feedback lists of several incidents, in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for iid in incident_ids:
            pipe.lrange(f"{self.prefix}fb:{iid}", 0, -1)
        self.ops += 1
        rows: Any = pipe.execute() if incident_ids else []
        return [[_bytes(v) for v in row] for row in rows]

    def feedback_for(self, incident_id: str) -> list[bytes]:
        items: Any = self.r.lrange(f"{self.prefix}fb:{incident_id}", 0, -1)
        return [_bytes(v) for v in items]


@dataclass(frozen=True)
class RecentIncidents:
    """The newest incident records (see :meth:`RedisStore.recent_incidents`)."""

    ids: list[str]
    open: set[str]
    records: list[bytes | None]
    open_count: int


def _coalesced(ops: Sequence[MembershipOp]) -> list[MembershipOp]:
    """The same changes with the joins between two moves or merges folded into one per
    incident (joins commute with each other, not with moves and merges): one list push per
    incident per write instead of one per run of joins."""
    out: list[MembershipOp] = []
    run: dict[str, Joined] = {}
    for op in ops:
        if isinstance(op, Joined):
            cur = run.get(op.incident)
            if cur is None:
                run[op.incident] = Joined(op.incident, list(op.alert_ids))
            else:
                cur.alert_ids.extend(op.alert_ids)
            continue
        out.extend(run.values())
        run = {}
        out.append(op)
    out.extend(run.values())
    return out
