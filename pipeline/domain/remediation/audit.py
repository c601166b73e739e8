"""The audit trail: one record per proposal, approval, denial, dry run, execution,
verification, rollback, escalation and refusal, on ``remediations`` and in the store.

Each record links incident -> runbook -> step -> action (its idempotency id) -> result,
with the actor (``stormwatch`` or the person). Secrets never enter a record: parameters
only ever *reference* them (``token_env``, ``token_file``), and executor output is passed
through :func:`scrub` with the secret values the executor read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import msgspec

#: the actor of everything the pipeline does by itself
SYSTEM = "stormwatch"
#: longest result text kept in a record
MAX_DETAIL = 2000


class AuditKind(StrEnum):
    proposed = "proposed"
    approved = "approved"
    denied = "denied"
    refused = "refused"
    diagnostic = "diagnostic"
    dry_run = "dry_run"
    executed = "executed"
    failed = "failed"
    verified = "verified"
    verification_failed = "verification_failed"
    rolled_back = "rolled_back"
    escalated = "escalated"


class AuditRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One remediation event (key on ``remediations``: the incident id)."""

    id: str
    kind: AuditKind
    at: float
    incident_id: str
    runbook_id: str
    actor: str = SYSTEM
    step_id: str = ""
    action: str = ""
    #: idempotency id of the action (same incident, runbook, step and try: same id)
    action_id: str = ""
    service: str = ""
    #: instances acted on, and the supervisord URL or namespace/deployment
    instances: list[str] = []
    locator: str = ""
    params: dict[str, Any] = {}
    ok: bool | None = None
    #: executor output or the reason (scrubbed, at most MAX_DETAIL characters)
    detail: str = ""
    #: the guard that refused (kind ``refused``)
    guard: str = ""
    #: a person must be paged
    page: bool = False
    try_no: int = 0


def action_id(incident_id: str, runbook_id: str, step_id: str, try_no: int) -> str:
    """Deterministic idempotency id: a restarted worker derives the same id for the same
    action, so it finds the action's record instead of running it again."""
    raw = f"{incident_id}\x1f{runbook_id}\x1f{step_id}\x1f{try_no}".encode()
    return "act-" + hashlib.blake2b(raw, digest_size=10).hexdigest()


def record_id(key: str, kind: AuditKind, seq: str) -> str:
    """Deterministic record id: a record written again after a crash has the same id."""
    return f"{key}:{kind}:{seq}"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced and cut to :data:`MAX_DETAIL`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "**********")
    return text[:MAX_DETAIL]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AuditRecord)


def encode_record(rec: AuditRecord) -> bytes:
    return _encoder.encode(rec)


def decode_record(data: bytes) -> AuditRecord:
    return _decoder.decode(data)
