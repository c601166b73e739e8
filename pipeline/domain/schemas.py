"""Wire types: the canonical alert, incident events, feedback and dead letters.

These msgspec Structs are the single source of truth for the JSON formats; the files in
``schemas/`` are generated from them (``stormwatch schemas``) and a test fails if they drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec

from pipeline.domain.remediation.audit import AuditRecord


class Severity(StrEnum):
    """Alert severity, most to least urgent."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"


SEVERITY_RANK: dict[Severity, int] = {
    Severity.critical: 3,
    Severity.error: 2,
    Severity.warning: 1,
    Severity.info: 0,
}


class AlertStatus(StrEnum):
    firing = "firing"
    resolved = "resolved"


def utc(ts: datetime) -> datetime:
    """Return ``ts`` as an aware UTC datetime (naive input is taken as UTC)."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


class Alert(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The canonical alert every adapter produces (DESIGN.md). Unknown fields are ignored."""

    id: str
    source: str
    service: str
    name: str
    severity: Severity
    status: AlertStatus
    timestamp: datetime
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    value: float | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("alert id must not be empty")
        if not self.service:
            raise ValueError("alert service must not be empty")
        if not self.name:
            raise ValueError("alert name must not be empty")
        if self.timestamp.tzinfo is None or self.timestamp.utcoffset() != UTC.utcoffset(None):
            self.timestamp = utc(self.timestamp)

    @property
    def epoch(self) -> float:
        """Event time in seconds since the Unix epoch."""
        return self.timestamp.timestamp()


class MetricSample(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One metric sample on ``metrics.raw`` for the online anomaly detectors."""

    service: str
    metric: str
    value: float
    timestamp: datetime
    labels: dict[str, str] = {}

    def __post_init__(self) -> None:
        self.timestamp = utc(self.timestamp)


class IncidentStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class EventType(StrEnum):
    opened = "opened"
    updated = "updated"
    root_cause_changed = "root_cause_changed"
    escalated = "escalated"
    resolved = "resolved"
    reopened = "reopened"
    merged = "merged"


class RootCauseCandidate(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A ranked root-cause hypothesis; ``score`` in [0, 1], higher is more likely."""

    service: str
    score: float
    alerting: bool = True
    reasons: list[str] = []


class AlertRef(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A member alert as the incident records it, with why it joined."""

    id: str
    service: str
    name: str
    severity: Severity
    status: AlertStatus
    timestamp: datetime
    reason: str = ""
    suppressed: bool = False
    #: when its resolve arrived (absent while firing, and for members counted resolved only
    #: because they went stale)
    resolved_at: datetime | None = None


class AlertCount(msgspec.Struct, kw_only=True):
    """How many member alerts one (service, alert name) contributed, and how many fire now."""

    service: str
    name: str
    count: int
    firing: int = 0


class RunbookStepRef(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    action: str
    title: str = ""


class RunbookLink(msgspec.Struct, kw_only=True):
    title: str
    url: str


class RunbookRef(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The runbook that fits an incident (docs/remediation.md): the procedure responders
    follow, and what the remediation process may run (``mode``)."""

    id: str
    title: str
    mode: str
    description: str = ""
    steps: list[RunbookStepRef] = []
    links: list[RunbookLink] = []


class ResponderRef(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A recommended responder, best first (docs/oncall.md, "Responder recommendation"):
    on call now (or named by an escalation step), ``score`` = expertise x availability x
    load, ``reason`` in one line; ``team`` and ``until`` of their on-call duty."""

    person: str
    score: float
    reason: str
    name: str = ""
    team: str | None = None
    until: datetime | None = None
    contact: dict[str, str] = {}


class Incident(msgspec.Struct, kw_only=True, omit_defaults=False):
    """One incident. On ``incidents`` and in the store it is a bounded view (see
    :mod:`pipeline.domain.event_view`): ``alerts``/``alert_ids`` list the most significant
    members, ``alerts_omitted`` says how many are not listed, ``alert_counts`` counts every
    member per service and alert name; the full membership is in the store. In the
    correlator it holds the members it keeps (at most ``correlation.max_members``)."""

    id: str
    status: IncidentStatus
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    severity: Severity = Severity.warning
    alert_ids: list[str] = []
    alerts: list[AlertRef] = []
    services: list[str] = []
    root_cause: str | None = None
    root_cause_candidates: list[RootCauseCandidate] = []
    explanation: str = ""
    page: bool = True
    priority: float = 0.5
    domain: str = ""
    merged_into: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    verdict: str | None = None
    version: int = 0
    #: member alerts in all (listed or not)
    alert_count: int = 0
    #: member alerts not listed in ``alerts`` / ``alert_ids`` of this view
    alerts_omitted: int = 0
    #: members per (service, alert name), most first; ``counts_omitted`` pairs not listed
    alert_counts: list[AlertCount] = []
    counts_omitted: int = 0
    #: the matching runbook (first by priority), when runbooks are configured
    runbook: RunbookRef | None = None
    #: who should respond, best first (at most 5), when an on-call directory is loaded
    responders: list[ResponderRef] = []
    #: label pairs every member alert of the root cause carried (at most 16 pairs, 1,024
    #: characters; see pipeline.domain.correlate.labels); runbooks match on them
    common_labels: dict[str, str] = {}


#: version of the ``incidents`` event schema: 2 = bounded views (counts, omitted members);
#: optional fields added since (``runbook``, ``responders``) keep it: old readers ignore them
EVENT_SCHEMA_VERSION = 2


class PagedResponder(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A person an escalation step paged: for which target (``schedule:<id>``,
    ``person:<id>`` or ``team:<id>``), why (one line), and how to reach them."""

    person: str
    name: str = ""
    target: str
    reason: str
    contacts: dict[str, str] = {}


class EscalationPage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What one step of an escalation policy paged (on ``escalated`` events from the
    escalation engine; docs/oncall.md). ``step`` counts from 1 within the policy's
    ``steps``; ``cycle`` is the pass through the steps (1 = first, up to ``repeat`` + 1);
    ``triggered`` counts (re-)triggers (an acknowledgement that timed out starts again).
    ``due_at`` is when the step was due; ``next_at`` when the next step pages if nobody
    acknowledges (absent: this was the last). ``paged`` is empty when nobody was on call."""

    policy: str
    team: str
    step: int
    steps: int
    cycle: int
    triggered: int = 1
    due_at: datetime
    next_at: datetime | None = None
    paged: list[PagedResponder] = []


class IncidentEvent(msgspec.Struct, kw_only=True):
    """One incident change on the ``incidents`` topic (key: incident id). ``escalation`` is
    set on the ``escalated`` events an escalation policy's steps send (null otherwise)."""

    type: EventType
    incident: Incident
    at: datetime
    detail: str = ""
    schema_version: int = EVENT_SCHEMA_VERSION
    escalation: EscalationPage | None = None


class FeedbackAction(StrEnum):
    ack = "ack"
    resolve = "resolve"
    verdict = "verdict"
    root_cause = "root_cause"
    merge = "merge"
    split_alerts = "split"
    #: approve / deny the incident's runbook (``runbook``: its id; absent: the one proposed)
    approve = "approve"
    deny = "deny"


class Verdict(StrEnum):
    actionable = "actionable"
    noise = "noise"
    duplicate = "duplicate"
    flapping = "flapping"
    auto_resolved = "auto_resolved"


class Feedback(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A responder's message on ``feedback`` (key: incident id)."""

    incident_id: str
    action: FeedbackAction
    timestamp: datetime
    user: str | None = None
    verdict: Verdict | None = None
    root_cause: str | None = None
    merge_with: list[str] = []
    alert_ids: list[str] = []
    note: str = ""
    runbook: str | None = None
    #: approve / deny: hex HMAC-SHA256 by the user's approver key
    #: (:mod:`pipeline.domain.remediation.signing`)
    signature: str | None = None

    def __post_init__(self) -> None:
        self.timestamp = utc(self.timestamp)
        if self.action is FeedbackAction.verdict and self.verdict is None:
            raise ValueError("action 'verdict' needs a 'verdict' field")
        if self.action is FeedbackAction.root_cause and not self.root_cause:
            raise ValueError("action 'root_cause' needs a 'root_cause' field")


class DeadLetter(msgspec.Struct, kw_only=True):
    """What the dead-letter headers say about a rejected message (value = original bytes)."""

    stage: str
    error: str
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("stormwatch-stage", self.stage.encode()),
            ("stormwatch-error", self.error.encode()),
            ("stormwatch-reason", self.reason.encode()[:4096]),
            ("stormwatch-source-topic", self.source_topic.encode()),
            ("stormwatch-source-partition", str(self.source_partition).encode()),
            ("stormwatch-source-offset", str(self.source_offset).encode()),
        ]

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | dict[str, bytes]) -> DeadLetter:
        h = dict(headers)
        return cls(
            stage=h["stormwatch-stage"].decode(),
            error=h["stormwatch-error"].decode(),
            reason=h["stormwatch-reason"].decode(),
            source_topic=h["stormwatch-source-topic"].decode(),
            source_partition=int(h["stormwatch-source-partition"]),
            source_offset=int(h["stormwatch-source-offset"]),
        )


WIRE_TYPES: dict[str, Any] = {
    "alert": Alert,
    "metric-sample": MetricSample,
    "incident-event": IncidentEvent,
    "feedback": Feedback,
    "dead-letter": DeadLetter,
    "remediation-event": AuditRecord,
}

_encoder = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    """JSON-encode a wire object."""
    return _encoder.encode(obj)


def to_builtins(obj: Any) -> Any:
    """Wire object -> plain JSON-compatible Python values."""
    return msgspec.to_builtins(obj)
