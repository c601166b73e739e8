"""Feedback -> model updates, and the audit record every update leaves.

Verdicts arrive on ``feedback`` and update the models at once (``learn_one``). What a verdict
teaches is fixed here, in one table, so it is reviewable:

================  =====================  ==============================================
feedback           actionability label    why
================  =====================  ==============================================
actionable         1 (page)               a responder confirmed the incident needed a human
root_cause         1 (page)               confirming a root cause implies a real incident
noise              0 (do not page)        the alerts paged for nothing
flapping           0 (do not page)        oscillating alerts, no action taken
auto_resolved      0 (do not page)        resolved by itself within minutes
duplicate          no label               the alerts were real; only the incident was redundant
ack / resolve      no label               say nothing about whether paging was right
merge / split      no label               grouping feedback, for the correlator
================  =====================  ==============================================

The label is taught to both classifiers of :class:`~pipeline.domain.scoring.AlertScorer`: the
alert-level one (per firing alert) and the incident-level one (per decision-time view of the
incident), which decides whether a page is held until the incident proves it is not transient.

Every update yields a :class:`ModelUpdate` (which feedback, when it was sent and applied,
which model, version before and after, label, how many examples): the worker logs and
publishes them, so any score can be traced back to the verdicts that shaped it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pipeline.domain.schemas import Feedback, FeedbackAction, Verdict

NEGATIVE_VERDICTS = frozenset({Verdict.noise, Verdict.flapping, Verdict.auto_resolved})
POSITIVE_VERDICTS = frozenset({Verdict.actionable})


def actionability_label(fb: Feedback) -> bool | None:
    """True (should page), False (should not page) or None (teaches the classifier nothing)."""
    if fb.action is FeedbackAction.root_cause:
        return True
    if fb.action is not FeedbackAction.verdict or fb.verdict is None:
        return None
    if fb.verdict in POSITIVE_VERDICTS:
        return True
    if fb.verdict in NEGATIVE_VERDICTS:
        return False
    return None


def feedback_kind(fb: Feedback) -> str:
    """``verdict:noise``, ``root_cause``, ``ack``... (what the audit record calls the feedback)."""
    if fb.action is FeedbackAction.verdict and fb.verdict is not None:
        return f"verdict:{fb.verdict.value}"
    return fb.action.value


@dataclass(frozen=True)
class ModelUpdate:
    """An auditable record of one model update caused by one piece of feedback."""

    incident_id: str
    feedback: str  # e.g. "verdict:noise"
    feedback_at: datetime  # when the responder sent it
    applied_at: datetime  # event time at which the model learned it
    model: str  # e.g. "actionability", "novelty", "detector:<service>/<metric>"
    version_before: int
    version_after: int
    label: str  # what was learned, e.g. "page=false"
    examples: int  # learn_one calls made
    user: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible form (datetimes as ISO 8601)."""
        d = asdict(self)
        d["feedback_at"] = self.feedback_at.isoformat()
        d["applied_at"] = self.applied_at.isoformat()
        return d
