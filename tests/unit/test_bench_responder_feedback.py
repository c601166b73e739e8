"""Simulated responder feedback for the insights bench: seeded, a share of verdicts from the
truth with errors, acknowledgements only on pages, plausible delays."""

from __future__ import annotations

import pytest

from benchmarks.responder_feedback import FeedbackSetting, simulate
from pipeline.domain.schemas import FeedbackAction, Verdict
from tests.unit.test_insights import incident


def _incidents() -> list:
    out = []
    for i in range(400):
        out.append(incident(f"i{i}", i * 3600, [("db", "Blip", 0)], page=i % 2 == 0))
    return out


def test_verdicts_follow_the_truth_with_the_share_and_error_asked_for() -> None:
    incs = _incidents()
    truth = {f"i{i}-0": ("f1" if i % 4 == 0 else None) for i in range(400)}
    fbs = simulate(incs, truth, FeedbackSetting(verdict_share=0.5, verdict_error=0.1, seed=3))
    verdicts = {f.incident_id: f.verdict for f in fbs if f.action is FeedbackAction.verdict}
    assert 160 <= len(verdicts) <= 240
    wrong = sum((v is Verdict.actionable) != (int(iid[1:]) % 4 == 0) for iid, v in verdicts.items())
    assert 0.04 <= wrong / len(verdicts) <= 0.16
    acked = {f.incident_id for f in fbs if f.action is FeedbackAction.ack}
    assert acked and all(int(iid[1:]) % 2 == 0 for iid in acked)  # only pages
    by_id = {inc.id: inc for inc in incs}
    for f in fbs:
        inc = by_id[f.incident_id]
        if f.action is FeedbackAction.verdict:
            assert inc.resolved_at is not None and f.timestamp > inc.resolved_at
        if f.action is FeedbackAction.ack:
            assert f.timestamp > inc.opened_at
    assert [f.timestamp for f in fbs] == sorted(f.timestamp for f in fbs)
    assert simulate(incs, truth, FeedbackSetting(0.5, 0.1, seed=3)) == fbs


def test_no_verdicts_and_no_errors_are_settings_too() -> None:
    incs = _incidents()
    truth = {f"i{i}-0": None for i in range(400)}
    none = simulate(incs, truth, FeedbackSetting(verdict_share=0.0, ack_share=0.0))
    assert none == []
    exact = simulate(incs, truth, FeedbackSetting(verdict_share=1.0, verdict_error=0.0))
    assert {f.verdict for f in exact if f.verdict} == {Verdict.noise}
    with pytest.raises(ValueError, match="verdict_share"):
        FeedbackSetting(verdict_share=1.5)
