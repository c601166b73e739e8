"""The noisy-rule model: a Bayes factor with the rate model, verdicts, learned signs."""

from __future__ import annotations

import pytest

from pipeline.domain.insights.noise import (
    Evidence,
    background_probability,
    chance_corroboration,
)


def ev(
    plain: int, corroborated: int, quick: int = 0, flapping: int = 0, nv: int = 0, av: int = 0
) -> Evidence:
    return Evidence(plain, corroborated, quick, flapping, nv, av)


def test_rate_model_is_the_busy_share_of_time_bounded() -> None:
    assert chance_corroboration(25.0, 100.0) == 0.25
    assert chance_corroboration(0.0, 100.0) == 0.01
    assert chance_corroboration(500.0, 100.0) == 0.99
    assert chance_corroboration(1.0, 0.0) == 0.5


def test_more_lone_occurrences_mean_more_confidence_and_corroboration_means_signal() -> None:
    one, ten, mixed, symptom = background_probability(
        [ev(1, 0), ev(10, 0), ev(7, 3), ev(10, 10)], chance=0.15
    )
    assert 0.6 < one < 0.7  # one lone alert: a little evidence
    assert ten > 0.9 > one
    assert mixed < 0.5  # corroborated 3 of 7 times, far above chance: it carries signal
    assert symptom < 0.01


def test_corroboration_at_the_chance_rate_is_what_background_does() -> None:
    # a rule corroborated as often as a busy system corroborates anything by coincidence
    busy = background_probability([ev(20, 16)], chance=0.8)[0]
    quiet = background_probability([ev(20, 16)], chance=0.1)[0]
    assert busy > 0.5 > quiet


def test_verdicts_outweigh_structure() -> None:
    said_noise, said_actionable = background_probability(
        [ev(0, 0, nv=5), ev(10, 0, av=5)], chance=0.2
    )
    assert said_noise > 0.99
    assert said_actionable < 0.05


def test_signs_weigh_in_only_when_verdicts_show_they_separate() -> None:
    # no judged rules: quick clearing carries no weight
    a, b = background_probability([ev(4, 2, quick=4), ev(4, 2, quick=0)], chance=0.3)
    assert a == pytest.approx(b)
    # judged rules show noise clears quickly and signal does not: now it counts
    judged = [ev(10, 1, quick=9, nv=5), ev(10, 9, quick=1, av=5)]
    a, b = background_probability([*judged, ev(4, 2, quick=4), ev(4, 2, quick=0)], chance=0.3)[2:]
    assert a > 0.5 > b
