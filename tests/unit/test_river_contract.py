"""River's estimator contract for every model the project adds (DESIGN.md).

River's dataset-driven checks need scikit-learn and downloads, which the project does not
ship; the dataset-free checks of ``river.checks.common`` run as they are, and pickling,
seeded determinism and input purity are checked here on the project's own streams.
"""

from __future__ import annotations

import copy
import pickle
import random

import pytest
from river.checks import common

from pipeline.domain.detectors import SurpriseDetector

DATASET_FREE_CHECKS = [
    common.check_repr,
    common.check_str,
    common.check_tags,
    common.check_clone_same_class,
    common.check_clone_is_idempotent,
    common.check_init_has_default_params_for_tests,
    common.check_init_default_params_are_not_mutable,
    common.check_doc,
    common.check_clone_changes_memory_addresses,
    common.check_pickling_supports_roundtrip,
    common.check_get_params_matches_signature,
]


def _stream(n: int = 600, seed: int = 7) -> list[dict[str, float]]:
    rng = random.Random(seed)
    out = [{"value": 10 + rng.gauss(0, 1), "other": rng.random()} for _ in range(n)]
    out[500]["value"] = 40.0
    return out


def _params() -> list[dict[str, object]]:
    return list(SurpriseDetector._unit_test_params())


@pytest.mark.parametrize("check", DATASET_FREE_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("params", _params(), ids=str)
def test_river_common_checks(check: object, params: dict[str, object]) -> None:
    model = SurpriseDetector(**params)  # type: ignore[arg-type]
    check(copy.deepcopy(model))  # type: ignore[operator]


@pytest.mark.parametrize("params", _params(), ids=str)
def test_pickling_mid_stream_scores_identically(params: dict[str, object]) -> None:
    model = SurpriseDetector(**params)  # type: ignore[arg-type]
    xs = _stream()
    for x in xs[:300]:
        model.learn_one(x)
    twin = pickle.loads(pickle.dumps(model))
    for x in xs[300:]:
        assert model.score_one(x) == twin.score_one(x)
        model.learn_one(x)
        twin.learn_one(x)


def test_determinism_and_clone_independence() -> None:
    xs = _stream()
    a, b = SurpriseDetector(), SurpriseDetector()
    sa, sb = [], []
    for x in xs:
        sa.append(a.score_one(x))
        a.learn_one(x)
        sb.append(b.score_one(x))
        b.learn_one(x)
    assert sa == sb
    fresh = a.clone()
    assert fresh.score_one(xs[0]) == 0.0  # a clone starts untrained


def test_no_input_mutation_and_score_one_is_pure() -> None:
    model = SurpriseDetector()
    xs = _stream()
    for x in xs[:400]:
        before = dict(x)
        model.learn_one(x)
        assert x == before
    state = pickle.dumps(model)
    x = xs[400]
    before = dict(x)
    s1 = model.score_one(x)
    s2 = model.score_one(x)
    assert s1 == s2 and x == before
    assert pickle.dumps(model) == state


def test_score_learn_matches_score_then_learn() -> None:
    a, b = SurpriseDetector(), SurpriseDetector()
    for x in _stream():
        expected = a.score_one({"value": x["value"]})
        a.learn_one({"value": x["value"]})
        assert b.score_learn(x["value"]) == expected


def test_anomaly_ranked_above_normal_points() -> None:
    model = SurpriseDetector()
    scores = []
    for x in _stream():
        scores.append(model.score_one(x))
        model.learn_one(x)
    assert scores[500] == max(scores)


def test_incident_classifier_contract() -> None:
    """The scorer's incident model: learning does not mutate the incident, pickles mid-stream,
    and two scorers fed the same verdicts agree exactly (no hidden randomness)."""
    from datetime import UTC, datetime, timedelta

    from pipeline.domain.schemas import (
        AlertRef,
        AlertStatus,
        Feedback,
        FeedbackAction,
        Incident,
        IncidentStatus,
        Severity,
        Verdict,
    )
    from pipeline.domain.scoring import AlertScorer

    t0 = datetime(2024, 1, 1, tzinfo=UTC)

    def incident(k: int) -> Incident:
        refs = [
            AlertRef(
                id=f"a{k}-{j}",
                service=f"s{(k + j) % 3}",
                name=f"n{k % 2}",
                severity=Severity.critical,
                status=AlertStatus.firing,
                timestamp=t0 + timedelta(minutes=k),
            )
            for j in range(1 + k % 3)
        ]
        return Incident(
            id=f"i{k}",
            status=IncidentStatus.open,
            opened_at=refs[0].timestamp,
            updated_at=refs[-1].timestamp,
            alert_ids=[r.id for r in refs],
            alerts=refs,
            services=sorted({r.service for r in refs}),
        )

    def verdict(k: int) -> Feedback:
        v = Verdict.noise if k % 2 else Verdict.actionable
        return Feedback(incident_id=f"i{k}", action=FeedbackAction.verdict, verdict=v, timestamp=t0)

    a, b = AlertScorer(), AlertScorer()
    for k in range(20):
        inc = incident(k)
        before = copy.deepcopy(inc)
        a.hold_until(inc)
        b.hold_until(inc)
        a.learn(inc, verdict(k))
        b.learn(inc, verdict(k))
        assert inc == before
        if k == 10:
            b = pickle.loads(pickle.dumps(b))
    for k in range(20, 30):
        assert a.incident_actionability(incident(k)) == b.incident_actionability(incident(k))
