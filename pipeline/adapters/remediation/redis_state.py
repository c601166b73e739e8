"""Remediation state in Redis, shared by every ``stormwatch remediate`` process.

Keys (after the configured prefix, ``rem:`` namespace):

==========================  ==========================================================
``rem:leader``              the remediation process that acts (others stand by)
``rem:kill``                the global kill switch (any value: on)
``rem:lock:<target>``       the action id holding a target (``SET NX PX``; released only
                            by its holder, atomically)
``rem:last``                hash (runbook|target) -> [time, incident] of the last run
``rem:runs``                sorted set of executed actions by time (breaker window)
``rem:appr:<inc>|<rb>``     list of approvals and denials
``rem:pending``             hash action id -> pending action (survives restarts)
``rem:mark:<key>``          once-only marks (proposed, diagnosed, done, closed, refused)
``rem:tries``               hash (incident|runbook) -> tries that ran all steps
``rem:facts:<inc>``         the incident's newest facts
``rem:audit:<inc>``         the incident's audit records (JSON), and ``rem:audit`` the
                            newest ``max_audit`` of all
==========================  ==========================================================

Per-incident keys expire ``ttl_s`` after their last write.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import redis

from pipeline.adapters.lease import HOLD_SCRIPT, RELEASE_SCRIPT
from pipeline.domain.remediation.audit import AuditRecord, encode_record
from pipeline.domain.remediation.guards import Approval
from pipeline.domain.remediation.matching import IncidentFacts
from pipeline.domain.remediation.verification import PendingAction

_pending = msgspec.json.Decoder(PendingAction)
_facts = msgspec.json.Decoder(IncidentFacts)
_approval = msgspec.json.Decoder(Approval)
_enc = msgspec.json.Encoder()


class RedisRemediationState:
    """Implements :class:`pipeline.domain.remediation.ports.RemediationState`."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "sw:",
        ttl_s: int = 30 * 86400,
        max_audit: int = 10_000,
        runs_kept_s: float = 7 * 86400,
    ) -> None:
        self.r = client
        self.p = f"{prefix}rem:"
        self.ttl_s = ttl_s
        self.max_audit = max_audit
        self.runs_kept_s = runs_kept_s
        self._release = client.register_script(RELEASE_SCRIPT)
        self._lead = client.register_script(HOLD_SCRIPT)

    def lead(self, token: str, ttl_s: float) -> bool:
        """Take or keep the leadership (one remediation process acts at a time: pending
        actions are verified by whoever leads); False while another process holds it."""
        return bool(self._lead(keys=[self.p + "leader"], args=[token, int(ttl_s * 1000)]))

    def kill_switch(self) -> bool:
        return bool(self.r.exists(self.p + "kill"))

    def set_kill_switch(self, on: bool) -> None:
        if on:
            self.r.set(self.p + "kill", "1")
        else:
            self.r.delete(self.p + "kill")

    def lock_holder(self, key: str) -> str | None:
        value: Any = self.r.get(self.p + "lock:" + key)
        return value.decode() if value is not None else None

    def acquire(self, key: str, action_id: str, ttl_s: float) -> bool:
        name = self.p + "lock:" + key
        if self.r.set(name, action_id, nx=True, px=int(ttl_s * 1000)):
            return True
        return self.lock_holder(key) == action_id

    def release(self, key: str, action_id: str) -> None:
        self._release(keys=[self.p + "lock:" + key], args=[action_id])

    def last_run(self, runbook_id: str, target_key: str) -> tuple[float, str] | None:
        value: Any = self.r.hget(self.p + "last", f"{runbook_id}|{target_key}")
        if value is None:
            return None
        at, incident = json.loads(value)
        return float(at), str(incident)

    def recent_runs(self, since: float) -> list[tuple[float, str]]:
        rows: Any = self.r.zrangebyscore(self.p + "runs", f"({since}", "+inf", withscores=True)
        return [(float(score), member.decode().split("|", 1)[1]) for member, score in rows]

    def note_run(
        self, runbook_id: str, target_key: str, service: str, incident_id: str, at: float
    ) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.p + "last", f"{runbook_id}|{target_key}", json.dumps([at, incident_id]))
        pipe.zadd(self.p + "runs", {f"{incident_id}:{runbook_id}:{at}|{service}": at})
        pipe.zremrangebyscore(self.p + "runs", "-inf", at - self.runs_kept_s)
        pipe.execute()

    def approvals(self, incident_id: str, runbook_id: str) -> list[Approval]:
        rows: Any = self.r.lrange(f"{self.p}appr:{incident_id}|{runbook_id}", 0, -1)
        return [_approval.decode(row) for row in rows]

    def add_approval(self, incident_id: str, runbook_id: str, approval: Approval) -> None:
        name = f"{self.p}appr:{incident_id}|{runbook_id}"
        pipe = self.r.pipeline(transaction=True)
        pipe.rpush(name, _enc.encode(approval))
        pipe.expire(name, self.ttl_s)
        pipe.execute()

    def pending(self) -> list[PendingAction]:
        rows: Any = self.r.hvals(self.p + "pending")
        return sorted((_pending.decode(v) for v in rows), key=lambda p: (p.started_at, p.action_id))

    def get_pending(self, action_id: str) -> PendingAction | None:
        value: Any = self.r.hget(self.p + "pending", action_id)
        return _pending.decode(value) if value is not None else None

    def put_pending(self, pa: PendingAction) -> None:
        self.r.hset(self.p + "pending", pa.action_id, _enc.encode(pa))

    def drop_pending(self, action_id: str) -> None:
        self.r.hdel(self.p + "pending", action_id)

    def seen(self, key: str) -> bool:
        return bool(self.r.exists(self.p + "mark:" + key))

    def mark(self, key: str) -> bool:
        return bool(self.r.set(self.p + "mark:" + key, "1", nx=True, ex=self.ttl_s))

    def tries(self, incident_id: str, runbook_id: str) -> int:
        value: Any = self.r.hget(self.p + "tries", f"{incident_id}|{runbook_id}")
        return int(value) if value is not None else 0

    def add_try(self, incident_id: str, runbook_id: str) -> int:
        return int(self.r.hincrby(self.p + "tries", f"{incident_id}|{runbook_id}", 1))

    def facts(self, incident_id: str) -> IncidentFacts | None:
        value: Any = self.r.get(self.p + "facts:" + incident_id)
        return _facts.decode(value) if value is not None else None

    def put_facts(self, facts: IncidentFacts) -> None:
        self.r.set(self.p + "facts:" + facts.incident_id, _enc.encode(facts), ex=self.ttl_s)

    def append(self, rec: AuditRecord) -> None:
        data = encode_record(rec)
        name = f"{self.p}audit:{rec.incident_id}"
        pipe = self.r.pipeline(transaction=True)
        pipe.rpush(name, data)
        pipe.expire(name, self.ttl_s)
        pipe.lpush(self.p + "audit", data)
        pipe.ltrim(self.p + "audit", 0, self.max_audit - 1)
        pipe.execute()

    def audit(self, incident_id: str) -> list[bytes]:
        """The incident's audit records, oldest first (``stormwatch remediation trail``)."""
        rows: Any = self.r.lrange(f"{self.p}audit:{incident_id}", 0, -1)
        return list(rows)
