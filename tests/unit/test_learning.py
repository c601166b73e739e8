"""Feedback -> labels, and the audit trail of model updates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.domain.learning import ModelUpdate, actionability_label, feedback_kind
from pipeline.domain.schemas import Feedback, FeedbackAction, Verdict

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("verdict", "label"),
    [
        (Verdict.actionable, True),
        (Verdict.noise, False),
        (Verdict.flapping, False),
        (Verdict.auto_resolved, False),
        (Verdict.duplicate, None),
    ],
)
def test_verdict_labels(verdict: Verdict, label: bool | None) -> None:
    fb = Feedback(incident_id="i", action=FeedbackAction.verdict, verdict=verdict, timestamp=T0)
    assert actionability_label(fb) is label
    assert feedback_kind(fb) == f"verdict:{verdict.value}"


def test_non_verdict_actions() -> None:
    assert (
        actionability_label(Feedback(incident_id="i", action=FeedbackAction.ack, timestamp=T0))
        is None
    )
    rc = Feedback(incident_id="i", action=FeedbackAction.root_cause, root_cause="db", timestamp=T0)
    assert actionability_label(rc) is True
    assert feedback_kind(rc) == "root_cause"


def test_model_update_is_plain_data() -> None:
    u = ModelUpdate(
        incident_id="i",
        feedback="verdict:noise",
        feedback_at=T0,
        applied_at=T0,
        model="actionability",
        version_before=3,
        version_after=4,
        label="page=false",
        examples=2,
        user="bob",
    )
    d = u.to_dict()
    assert d["version_before"] == 3 and d["applied_at"] == "2024-01-01T00:00:00+00:00"
