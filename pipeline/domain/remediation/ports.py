"""What the remediation engine needs from the edges: a state store and executors.

The worker implements :class:`RemediationState` on Redis and :class:`Executor` with the
real executors (``pipeline/adapters/remediation``); the benchmark and unit tests use the
in-memory state and simulated executors.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from pipeline.domain.remediation.actions import ActionKind
from pipeline.domain.remediation.audit import AuditRecord
from pipeline.domain.remediation.guards import Approval
from pipeline.domain.remediation.matching import IncidentFacts
from pipeline.domain.remediation.targets import Target
from pipeline.domain.remediation.verification import PendingAction


class ExecResult(msgspec.Struct, kw_only=True):
    ok: bool
    detail: str = ""
    #: what the inverse needs to restore the state before (e.g. ``{"replicas": 3}``)
    undo: dict[str, Any] = {}
    #: no dry run exists for this action (``command``, ``http.webhook``)
    unsupported: bool = False


class ExecContext(msgspec.Struct, kw_only=True, frozen=True):
    """Ids an executor may pass on (``command`` arguments, webhook body): never alert text."""

    incident_id: str
    runbook_id: str
    step_id: str
    action_id: str


class Executor(Protocol):
    def execute(
        self,
        kind: ActionKind,
        target: Target,
        params: dict[str, Any],
        ctx: ExecContext,
        dry_run: bool,
    ) -> ExecResult:
        """Run (or with ``dry_run`` only check) one action; never raises for the action's
        own failure (``ok=False`` with the reason), and never returns secret values."""
        ...

    def list_instances(self, kind: ActionKind, target: Target) -> list[str] | None:
        """Instances the platform reports for ``target`` (Kubernetes pods), or None."""
        ...

    def unhealthy(self, kind: ActionKind, target: Target) -> list[str] | None:
        """Instances of ``target`` the platform reports unhealthy, or None (unknown)."""
        ...


class RemediationState(Protocol):
    """Locks, cooldowns, breaker history, approvals, pending actions, tries, the trail."""

    def kill_switch(self) -> bool: ...

    def lock_holder(self, key: str) -> str | None: ...

    def acquire(self, key: str, action_id: str, ttl_s: float) -> bool: ...

    def release(self, key: str, action_id: str) -> None: ...

    def last_run(self, runbook_id: str, target_key: str) -> tuple[float, str] | None: ...

    def recent_runs(self, since: float) -> list[tuple[float, str]]: ...

    def note_run(
        self, runbook_id: str, target_key: str, service: str, incident_id: str, at: float
    ) -> None: ...

    def approvals(self, incident_id: str, runbook_id: str) -> list[Approval]: ...

    def add_approval(self, incident_id: str, runbook_id: str, approval: Approval) -> None: ...

    def pending(self) -> list[PendingAction]: ...

    def get_pending(self, action_id: str) -> PendingAction | None: ...

    def put_pending(self, pa: PendingAction) -> None: ...

    def drop_pending(self, action_id: str) -> None: ...

    def seen(self, key: str) -> bool:
        """Whether a once-only thing (proposal, diagnostic, finished action) happened."""
        ...

    def mark(self, key: str) -> bool:
        """Mark a once-only thing; False when it was already marked."""
        ...

    def tries(self, incident_id: str, runbook_id: str) -> int: ...

    def add_try(self, incident_id: str, runbook_id: str) -> int: ...

    def facts(self, incident_id: str) -> IncidentFacts | None:
        """The newest facts of an incident (approvals and the timer act on them)."""
        ...

    def put_facts(self, facts: IncidentFacts) -> None: ...

    def append(self, rec: AuditRecord) -> None: ...
