"""Which alert rules are background noise: a Bayes factor per rule, with a rate model.

A rule is either **background** (it fires on a schedule of its own, independent of
failures) or **signal** (it fires because something failed). One incident a rule took part
in is one occurrence; an occurrence without a verdict is **corroborated** when the
correlator joined another rule's alerts to it (alerts it relates through the service graph
and time) or a person acknowledged or resolved the incident.

* **Rate model.** A background rule is corroborated only by coincidence: its alerts arrive
  independently of incidents, so the share of them that land inside a multi-rule incident is
  the share of time such incidents cover (:func:`chance_corroboration`, ``p0``). Under
  *background*, the corroborated count is Binomial(n, p0).
* Under *signal*, a rule is corroborated at a rate of its own, anything above chance
  (uniform on ``[p0, 1]``; rules differ, so no single rate is assumed).
* The **Bayes factor** of the two, at even prior odds, gives the posterior probability that
  the rule is background: evidence and its amount in one number (one lone alert gives
  about 0.67, ten lone alerts 0.92, one corroboration among four occurrences about 0.65).
* **Verdicts** multiply in as a second Bayes factor (:func:`verdict_log_factor`), each
  wrong with probability :data:`VERDICT_ERROR`: under *background* every occurrence is noise,
  so a verdict says ``noise`` (``flapping``, ``auto_resolved``) unless it is wrong; under
  *signal* the rule fires on something real in a share of its occurrences of its own
  (uniform on [0, 1]: a real rule fires on noise too now and then), so a few actionable
  verdicts among many noise ones mean signal, one in ten is what errors explain.
  ``duplicate`` says nothing. A verdict is on an incident, and every rule in it takes it:
  ``noise`` says all its alerts were noise; ``actionable`` that the incident was real, and
  the correlator related its rules to it by graph and time. (A background alert the
  correlator joined to a real incident by coincidence so takes an ``actionable`` verdict: in
  a busy system that hides background rules, see docs/insights.md. Two ways of telling
  such a landing apart were tried and dropped: counting it as a corroboration only, and
  giving it, under *background*, the verdict rate of judged multi-rule incidents; both
  flagged real symptom rules of busy systems, which land in real incidents as often.)
* **Clearing by itself quickly** and **flapping** weigh in only as far as this system's
  verdicts show they separate noise from signal. They are **traits of a rule** (how it is
  written: its ``for:``, its hysteresis), shared by its occurrences, so a rule counts once
  for each (the trait it shows in most of its occurrences), not once per occurrence: twelve
  flaps of one rule are one rule that flaps. The rate of each trait is taken among the
  *other* rules responders judged mostly noise and among the other rules judged mostly
  actionable (Beta(1, 1) smoothed; a rule's own traits never set the rates it is judged by,
  so a judged rule cannot confirm itself); with no such rules of either kind they carry no
  weight. Clearing by itself is counted among the occurrences nobody acknowledged or
  resolved (only those can clear untouched), so it does not stand in for "nobody was paged".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

#: how often a responder's verdict is taken to be wrong (a noise verdict on a signal rule)
VERDICT_ERROR = 0.1
#: bounds on the chance rate, so no occurrence is ever impossible
_EPS = 0.01


@dataclass(frozen=True)
class Evidence:
    """What one rule's incidents show (counts of occurrences)."""

    #: occurrences without a verdict
    plain: int
    #: ... of which corroborated (another rule joined it, or somebody acted)
    corroborated: int
    #: ... of which it cleared by itself within minutes, untouched
    quick: int
    #: ... of which it flapped
    flapping: int
    noise_verdicts: int
    actionable_verdicts: int
    #: occurrences without a verdict nobody acknowledged or resolved (only those can clear by
    #: themselves: the trials of ``quick``); None: unknown (state from before it was counted),
    #: taken as ``plain``
    untouched: int | None = None


def chance_corroboration(busy_s: float, span_s: float) -> float:
    """The rate model: the chance that an alert arriving at a random time lands in a
    multi-rule incident, the share of the observed span ``busy_s`` covers."""
    if span_s <= 0:
        return 0.5
    return float(np.clip(busy_s / span_s, _EPS, 1 - _EPS))


def background_probability(rules: list[Evidence], chance: float) -> list[float]:
    """Posterior probability, per rule, that it is background (same order as ``rules``)."""
    if not rules:
        return []
    p0 = float(np.clip(chance, _EPS, 1 - _EPS))
    n = np.array([r.plain for r in rules], dtype=float)
    c = np.array([r.corroborated for r in rules], dtype=float)
    nv = np.array([r.noise_verdicts for r in rules], dtype=float)
    av = np.array([r.actionable_verdicts for r in rules], dtype=float)
    # background: Binomial(n, p0); signal: rate uniform on [p0, 1] (the binomial coefficient
    # is common to both and left out)
    log_bg = c * np.log(p0) + (n - c) * np.log1p(-p0)
    upper = 1 - special.betainc(c + 1, n - c + 1, p0)  # mass of Beta(c+1, n-c+1) above p0
    log_sig = special.betaln(c + 1, n - c + 1) + np.log(np.maximum(upper, 1e-300))
    log_sig -= np.log1p(-p0)
    log_odds = log_bg - log_sig + verdict_log_factor(nv, av)
    signs = np.array([[r.quick, r.flapping] for r in rules], dtype=float)
    # the trials of each sign: clearing untouched is possible only where nobody acted
    trials = np.array(
        [[r.plain if r.untouched is None else r.untouched, r.plain] for r in rules], dtype=float
    )
    # how a rule clears and whether it flaps are traits of the rule (how it is written: its
    # ``for:``, its hysteresis), shared by its occurrences: one observation per rule, the
    # trait shown in most of its trials, not one per occurrence
    known = (trials > 0).astype(float)
    traits = known * (2 * signs > trials)
    bg, sig = _sign_rates(traits, known, nv > av, av > nv)
    log_odds += _loglik(traits, known, bg) - _loglik(traits, known, sig)
    return [float(v) for v in special.expit(log_odds)]


def verdict_log_factor(noise_verdicts: np.ndarray, actionable: np.ndarray) -> np.ndarray:
    """Log Bayes factor (background over signal) of each rule's verdicts.

    Background: every occurrence is noise, so a verdict says ``noise`` unless it is wrong
    (:data:`VERDICT_ERROR`). Signal: the rule fires on something real in a share ``r`` of its
    occurrences, ``r`` uniform on [0, 1] (a real rule also fires on noise now and then; no
    share is assumed), so a verdict says ``actionable`` with probability
    ``a = e + r (1 - 2e)``, uniform on [e, 1 - e]."""
    nv, av = noise_verdicts, actionable
    e = VERDICT_ERROR
    log_bg = nv * np.log1p(-e) + av * np.log(e)
    # integral of a^av (1 - a)^nv over [e, 1 - e], divided by its length
    mass = special.betainc(av + 1, nv + 1, 1 - e) - special.betainc(av + 1, nv + 1, e)
    log_sig = special.betaln(av + 1, nv + 1) + np.log(np.maximum(mass, 1e-300))
    log_sig -= np.log1p(-2 * e)
    return np.asarray(log_bg - log_sig)


def _sign_rates(
    x: np.ndarray, n: np.ndarray, noisy: np.ndarray, real: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per rule and sign, its rate among the *other* rules responders judged mostly noise
    (``noisy``) and mostly actionable (``real``), Beta(1, 1)-smoothed: ``x`` the signs seen
    and ``n`` their trials, rules by signs (here a rule's traits: 0 or 1 of 0 or 1). A rule's
    own signs are left out of the rates it is judged by, so a judged rule cannot confirm
    itself. Equal rates (no weight) where the other rules hold no trials of both kinds."""
    own_noisy = np.where(noisy[:, None], 1.0, 0.0)
    own_real = np.where(real[:, None], 1.0, 0.0)
    xn = x[noisy].sum(0) - own_noisy * x
    nn = n[noisy].sum(0) - own_noisy * n
    xr = x[real].sum(0) - own_real * x
    nr = n[real].sum(0) - own_real * n
    bg = (1 + xn) / (2 + nn)
    sig = (1 + xr) / (2 + nr)
    weightless = (nn <= 0) | (nr <= 0)
    return np.where(weightless, 0.5, bg), np.where(weightless, 0.5, sig)


def _loglik(x: np.ndarray, n: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Binomial log-likelihood of each rule's signs ``x`` in ``n`` trials at ``rate`` (all
    rules by signs; without the constant), summed over the signs."""
    return np.asarray((x * np.log(rate) + (n - x) * np.log1p(-rate)).sum(1))
