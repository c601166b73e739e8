"""What the insights need from one closed incident and its feedback (a small, bounded record).

An incident is read from its final state (a ``resolved`` event on ``incidents`` or a line of
``replay`` output); feedback may come before or after it and is folded into the same record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.domain.schemas import (
    AlertStatus,
    Feedback,
    FeedbackAction,
    Incident,
    Severity,
    Verdict,
)

Rule = tuple[str, str]  # (service, alert name)

#: verdicts that say the page was not worth it
NOISE_VERDICTS = frozenset({Verdict.noise, Verdict.flapping, Verdict.auto_resolved})


@dataclass
class IncidentFacts:
    """One incident as the insights see it (times in epoch seconds)."""

    id: str
    opened_at: float
    resolved_at: float | None
    severity: Severity
    root_cause: str | None
    page: bool
    #: member alerts per rule (every member, listed or not)
    rules: dict[Rule, int]
    #: first firing time per alerting service (from the listed members; opened_at otherwise)
    first_fire: dict[str, float]
    #: ranked candidate services after the root cause (silent ones included)
    candidates: list[str] = field(default_factory=list)
    #: per rule: listed members that resolved by themselves, and listed members with a known end
    self_resolved: dict[Rule, tuple[int, int]] = field(default_factory=dict)
    acked_at: float | None = None
    resolved_by: str | None = None
    verdict: Verdict | None = None
    confirmed_root_cause: str | None = None

    @property
    def cause(self) -> str | None:
        """The confirmed root cause if a responder gave one, else the correlator's."""
        return self.confirmed_root_cause or self.root_cause

    @property
    def services(self) -> list[str]:
        return sorted(self.first_fire)

    @property
    def human_touched(self) -> bool:
        """Someone acknowledged or resolved it by hand (it did not just go away)."""
        return self.acked_at is not None or self.resolved_by is not None

    def apply(self, fb: Feedback) -> None:
        """Fold one feedback message in (the last verdict and root cause win)."""
        at = fb.timestamp.timestamp()
        if fb.action is FeedbackAction.ack:
            if self.acked_at is None or at < self.acked_at:
                self.acked_at = at
        elif fb.action is FeedbackAction.resolve:
            self.resolved_by = fb.user or "responder"
            if self.resolved_at is None:
                self.resolved_at = at
        elif fb.action is FeedbackAction.verdict:
            self.verdict = fb.verdict
        elif fb.action is FeedbackAction.root_cause:
            self.confirmed_root_cause = fb.root_cause


def facts_of(inc: Incident, auto_resolve_s: float) -> IncidentFacts:
    """The facts of an incident in its final state."""
    opened = inc.opened_at.timestamp()
    rules: dict[Rule, int] = {}
    for c in inc.alert_counts:
        rules[(c.service, c.name)] = rules.get((c.service, c.name), 0) + c.count
    first: dict[str, float] = {}
    self_resolved: dict[Rule, tuple[int, int]] = {}
    for ref in inc.alerts:
        t = ref.timestamp.timestamp()
        if t < first.get(ref.service, float("inf")):
            first[ref.service] = t
        if not inc.alert_counts:
            rules[(ref.service, ref.name)] = rules.get((ref.service, ref.name), 0) + 1
        if ref.status is AlertStatus.resolved and ref.resolved_at is not None:
            quick = ref.resolved_at.timestamp() - t <= auto_resolve_s
            done, known = self_resolved.get((ref.service, ref.name), (0, 0))
            self_resolved[(ref.service, ref.name)] = (done + quick, known + 1)
    for service, _ in rules:
        first.setdefault(service, opened)
    return IncidentFacts(
        id=inc.id,
        opened_at=opened,
        resolved_at=inc.resolved_at.timestamp() if inc.resolved_at else None,
        severity=inc.severity,
        root_cause=inc.root_cause,
        page=inc.page,
        rules=rules,
        first_fire=first,
        candidates=[c.service for c in inc.root_cause_candidates],
        self_resolved=self_resolved,
        acked_at=inc.acknowledged_at.timestamp() if inc.acknowledged_at else None,
        resolved_by=inc.resolved_by,
        verdict=_verdict(inc.verdict),
    )


def _verdict(value: str | None) -> Verdict | None:
    try:
        return Verdict(value) if value else None
    except ValueError:
        return None
