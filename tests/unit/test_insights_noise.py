"""The noisy-rule model: a Bayes factor with the rate model, verdicts, learned signs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from pipeline.domain.insights.noise import (
    VERDICT_ERROR,
    Evidence,
    background_probability,
    chance_corroboration,
    verdict_log_factor,
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
    said_noise, said_actionable, often_noise = background_probability(
        [ev(0, 0, nv=5), ev(10, 0, av=5), ev(0, 0, nv=12)], chance=0.2
    )
    assert said_noise > 0.8
    assert often_noise > 0.9 > said_noise  # more verdicts, more confidence
    assert said_actionable < 0.05


def test_a_rule_judged_real_now_and_then_is_signal_not_background() -> None:
    # background: every occurrence is noise, so three right actionable verdicts among ten
    # are far likelier from a real rule that also fires on noise than from three errors
    mixed, one_wrong = background_probability([ev(0, 0, nv=7, av=3), ev(0, 0, nv=9, av=1)], 0.2)
    assert mixed < 0.5 < one_wrong  # one actionable in ten is what the verdict error explains


def test_verdict_factor_is_the_two_likelihoods_integrated() -> None:
    e = VERDICT_ERROR
    for nv, av in ((0, 0), (1, 0), (0, 1), (7, 3), (20, 2)):
        bg = (1 - e) ** nv * e**av

        # signal: the real share r uniform on [0, 1]; P(actionable) = e + r (1 - 2e)
        def lik(r: float, nv: int = nv, av: int = av) -> float:
            a = e + r * (1 - 2 * e)
            return float(a**av * (1 - a) ** nv)

        sig = integrate.quad(lik, 0, 1)[0]
        got = verdict_log_factor(np.array([float(nv)]), np.array([float(av)]))[0]
        assert got == pytest.approx(np.log(bg / sig), rel=1e-6, abs=1e-9)


def test_signs_weigh_in_only_when_verdicts_show_they_separate() -> None:
    # no judged rules: quick clearing carries no weight
    a, b = background_probability([ev(4, 2, quick=4), ev(4, 2, quick=0)], chance=0.3)
    assert a == pytest.approx(b)
    # judged rules show noise clears quickly and signal does not: now it counts
    judged = [ev(10, 1, quick=9, nv=5), ev(10, 9, quick=1, av=5)]
    a, b = background_probability([*judged, ev(4, 2, quick=4), ev(4, 2, quick=0)], chance=0.3)[2:]
    assert a > 0.5 > b


def test_a_judged_rule_does_not_confirm_itself_through_the_signs() -> None:
    # one rule judged noise that always clears quickly, one judged actionable that never
    # does: each is judged by the others' rates only, and there are no others of its kind,
    # so the signs give neither any weight (before, each rule's own signs set the rate it
    # was then judged by)
    noisy, real = ev(6, 1, quick=6, nv=2), ev(6, 1, quick=0, av=2)
    alone = background_probability([noisy, real], chance=0.2)
    unsigned = background_probability([ev(6, 1, nv=2), ev(6, 1, av=2)], chance=0.2)
    assert alone == pytest.approx(unsigned)
    # with a second judged-noise rule that clears quickly, the first one's signs count
    more = background_probability([noisy, real, ev(6, 1, quick=6, nv=2)], chance=0.2)
    assert more[0] > alone[0]


def test_clearing_untouched_is_counted_among_the_untouched_occurrences_only() -> None:
    # judged rules: noise clears by itself in half of its untouched occurrences, signal in
    # half of its untouched ones too, but signal is acknowledged far more often; counted
    # over all occurrences, quick clearing would look like a sign of noise (it only says
    # nobody acted)
    judged = [
        Evidence(10, 2, 4, 0, 5, 0, untouched=8),
        Evidence(10, 8, 1, 0, 0, 5, untouched=2),
    ]
    quick, slow = background_probability(
        [
            *judged,
            Evidence(4, 1, 2, 0, 0, 0, untouched=4),
            Evidence(4, 1, 0, 0, 0, 0, untouched=4),
        ],
        chance=0.3,
    )[2:]
    plain = background_probability([*judged, ev(4, 1)], chance=0.3)[2]
    # half of the untouched clear either way: no evidence (beyond the priors' smoothing)
    assert quick == pytest.approx(plain, abs=0.05) and slow == pytest.approx(plain, abs=0.05)
