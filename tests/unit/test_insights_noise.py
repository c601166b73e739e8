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
    # judged rules: noise clears by itself in most of its occurrences (nobody acts on it);
    # signal in most of those nobody acted on too, but people act on most of its
    # occurrences. Counted over all occurrences, clearing untouched would look like a trait
    # of noise: it would only say that nobody acted
    judged = [
        Evidence(10, 2, 8, 0, 5, 0, untouched=10),
        Evidence(10, 8, 2, 0, 0, 5, untouched=2),
    ]
    quick, plain = background_probability(
        [*judged, Evidence(4, 1, 4, 0, 0, 0, untouched=4), Evidence(4, 1, 0, 0, 0, 0, untouched=0)],
        chance=0.3,
    )[2:]
    assert quick == pytest.approx(plain)
    # unknown untouched counts (state from before they were counted): all occurrences
    old = [Evidence(10, 2, 8, 0, 5, 0), Evidence(10, 8, 2, 0, 0, 5)]
    quick, plain = background_probability([*old, ev(4, 1, quick=4), ev(4, 1)], chance=0.3)[2:]
    assert quick > plain


def test_a_rule_counts_once_for_a_trait_however_often_it_shows_it() -> None:
    # two rules judged noise that flap, two judged real that do not: flapping is a trait of
    # noise here, but a rule that flapped 50 times is one rule that flaps, not 50 pieces of
    # evidence
    judged = [ev(5, 1, flapping=5, nv=3), ev(5, 1, flapping=5, nv=3)]
    judged += [ev(5, 4, av=3), ev(5, 4, av=3)]
    few, many, none = background_probability(
        [*judged, ev(2, 2, flapping=2), ev(50, 50, flapping=50), ev(2, 2)], chance=0.3
    )[4:]
    assert few > none
    many_unflapping = background_probability([*judged, ev(50, 50)], chance=0.3)[4]
    # the same factor whatever the count
    ratio = lambda p: p / (1 - p)  # noqa: E731
    assert ratio(many) / ratio(many_unflapping) == pytest.approx(ratio(few) / ratio(none))


def test_rule_counters_from_an_older_checkpoint_count_every_occurrence_as_untouched() -> None:
    import pickle

    from pipeline.domain.insights.quality import RuleStats, evidence_of

    old = RuleStats(plain=4, plain_quick=3)
    del old.__dict__["plain_untouched"]  # as unpickled from before the field existed
    old = pickle.loads(pickle.dumps(old))
    assert evidence_of(old).untouched is None  # taken as plain
    # the next occurrence folded in starts the count from there
    from pipeline.domain.insights.facts import IncidentFacts
    from pipeline.domain.schemas import Severity

    rule = ("db", "Blip")
    inc = IncidentFacts("i", 0.0, 60.0, Severity.warning, "db", False, {rule: 1}, {"db": 0.0})
    old.fold(rule, 1, inc, 3)
    assert evidence_of(old).untouched == 5 and evidence_of(old).plain == 5
