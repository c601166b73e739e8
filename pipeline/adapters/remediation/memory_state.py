"""Remediation state in memory (benchmark, unit tests); the worker keeps it in Redis."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from pipeline.domain.remediation.audit import AuditRecord
from pipeline.domain.remediation.guards import Approval
from pipeline.domain.remediation.matching import IncidentFacts
from pipeline.domain.remediation.verification import PendingAction


class MemoryRemediationState:
    """Implements :class:`pipeline.domain.remediation.ports.RemediationState`."""

    def __init__(self, clock: Callable[[], float] | None = None, kill: bool = False) -> None:
        self.kill = kill
        self.clock = clock
        self.locks: dict[str, tuple[str, float]] = {}
        self.last: dict[tuple[str, str], tuple[float, str]] = {}
        self.runs: list[tuple[float, str]] = []
        self.approved: dict[tuple[str, str], list[Approval]] = defaultdict(list)
        self.pendings: dict[str, PendingAction] = {}
        self.marks: set[str] = set()
        self.try_count: dict[tuple[str, str], int] = defaultdict(int)
        self.incident_facts: dict[str, IncidentFacts] = {}
        self.records: list[AuditRecord] = []

    def kill_switch(self) -> bool:
        return self.kill

    def lock_holder(self, key: str) -> str | None:
        held = self.locks.get(key)
        if held is None:
            return None
        holder, expires = held
        if self.clock is not None and self.clock() >= expires:
            del self.locks[key]
            return None
        return holder

    def acquire(self, key: str, action_id: str, ttl_s: float) -> bool:
        holder = self.lock_holder(key)
        if holder is not None and holder != action_id:
            return False
        now = self.clock() if self.clock is not None else 0.0
        self.locks[key] = (action_id, now + ttl_s if self.clock is not None else float("inf"))
        return True

    def release(self, key: str, action_id: str) -> None:
        if self.locks.get(key, ("",))[0] == action_id:
            del self.locks[key]

    def last_run(self, runbook_id: str, target_key: str) -> tuple[float, str] | None:
        return self.last.get((runbook_id, target_key))

    def recent_runs(self, since: float) -> list[tuple[float, str]]:
        return [r for r in self.runs if r[0] > since]

    def note_run(
        self, runbook_id: str, target_key: str, service: str, incident_id: str, at: float
    ) -> None:
        self.last[(runbook_id, target_key)] = (at, incident_id)
        self.runs.append((at, service))

    def approvals(self, incident_id: str, runbook_id: str) -> list[Approval]:
        return list(self.approved[(incident_id, runbook_id)])

    def add_approval(self, incident_id: str, runbook_id: str, approval: Approval) -> None:
        self.approved[(incident_id, runbook_id)].append(approval)

    def pending(self) -> list[PendingAction]:
        return sorted(self.pendings.values(), key=lambda p: (p.started_at, p.action_id))

    def get_pending(self, action_id: str) -> PendingAction | None:
        return self.pendings.get(action_id)

    def put_pending(self, pa: PendingAction) -> None:
        self.pendings[pa.action_id] = pa

    def drop_pending(self, action_id: str) -> None:
        self.pendings.pop(action_id, None)

    def seen(self, key: str) -> bool:
        return key in self.marks

    def mark(self, key: str) -> bool:
        if key in self.marks:
            return False
        self.marks.add(key)
        return True

    def tries(self, incident_id: str, runbook_id: str) -> int:
        return self.try_count[(incident_id, runbook_id)]

    def add_try(self, incident_id: str, runbook_id: str) -> int:
        self.try_count[(incident_id, runbook_id)] += 1
        return self.try_count[(incident_id, runbook_id)]

    def facts(self, incident_id: str) -> IncidentFacts | None:
        return self.incident_facts.get(incident_id)

    def put_facts(self, facts: IncidentFacts) -> None:
        self.incident_facts[facts.incident_id] = facts

    def append(self, rec: AuditRecord) -> None:
        self.records.append(rec)
