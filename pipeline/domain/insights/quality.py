"""Alert quality per rule (service, alert name): pages, noise, self-resolving, flapping.

Whether a rule is noise is decided by :mod:`pipeline.domain.insights.noise`: the posterior
probability that it is background, from how rarely its alerts are corroborated compared with
chance (the rate model), how they clear and flap, and the verdicts. A rule is called noisy
when that probability is above one half, and rules are ranked by it.

The simpler share is reported beside it: per incident, a noise-like verdict (noise, flapping,
auto_resolved) counts as noise and ``actionable`` as not; ``duplicate`` says nothing; without
a verdict, an incident that was one lone alert nobody acknowledged or resolved counts as
noise. Its one-sided ``1 - alpha`` Wilson lower bound is reported too.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.domain.insights import noise
from pipeline.domain.insights.facts import NOISE_VERDICTS, IncidentFacts, Rule
from pipeline.domain.insights.stats import lower_bound
from pipeline.domain.schemas import Verdict


@dataclass
class RuleStats:
    """Running counts of one rule."""

    incidents: int = 0
    pages: int = 0
    firings: int = 0
    verdicts: int = 0
    noise_verdicts: int = 0
    isolated: int = 0
    lone: int = 0
    #: incidents with noise evidence (verdict or, without one, isolated and untouched)
    noise_evidence: int = 0
    evidence: int = 0
    flapping: int = 0
    quick_resolves: int = 0
    known_resolves: int = 0
    root_cause: int = 0
    last_seen: float = 0.0
    #: occurrences without a verdict, and of those: corroborated, quick to clear, flapping
    plain: int = 0
    corroborated: int = 0
    plain_quick: int = 0
    plain_flapping: int = 0
    #: ... of which nobody acknowledged or resolved by hand (the ones that can clear untouched)
    plain_untouched: int = 0
    actionable: int = 0

    def fold(self, rule: Rule, count: int, inc: IncidentFacts, flap_min_fires: int) -> None:
        if "plain_untouched" not in self.__dict__:  # counters from before it was counted
            self.plain_untouched = self.plain
        self.incidents += 1
        self.pages += inc.page
        self.firings += count
        self.flapping += count >= flap_min_fires
        self.root_cause += inc.cause == rule[0]
        self.last_seen = max(self.last_seen, inc.opened_at)
        isolated = len(inc.first_fire) == 1
        self.isolated += isolated
        lone = sum(inc.rules.values()) == 1
        self.lone += lone
        if not inc.human_touched:
            quick, known = inc.self_resolved.get(rule, (0, 0))
            self.quick_resolves += quick
            self.known_resolves += known
        if inc.verdict is not None:
            self.verdicts += 1
            if inc.verdict is Verdict.duplicate:
                return
            noisy = inc.verdict in NOISE_VERDICTS
            self.noise_verdicts += noisy
            self.actionable += not noisy
        else:
            noisy = lone and not inc.human_touched
            self.plain += 1
            # the correlator joined another rule's alerts to it (related through the service
            # graph and time), or a person acted on it
            self.corroborated += len(inc.rules) > 1 or inc.human_touched
            if not inc.human_touched:
                self.plain_untouched += 1
                self.plain_quick += inc.self_resolved.get(rule, (0, 0))[0] > 0
            self.plain_flapping += count >= flap_min_fires
        self.evidence += 1
        self.noise_evidence += noisy


@dataclass(frozen=True)
class RuleQuality:
    """One rule's quality, as reported."""

    service: str
    name: str
    incidents: int
    pages: int
    firings: int
    verdicts: int
    #: share of noise-like verdicts among its verdicts (None without verdicts)
    noise_verdict_share: float | None
    #: share of its listed alerts that cleared by themselves within ``auto_resolve_s``
    auto_resolved_share: float | None
    #: share of its incidents in which it fired ``flap_min_fires`` times or more
    flapping_rate: float
    #: share of its incidents that held no other service's alerts
    isolated_share: float
    #: share of its incidents that were one lone alert of it
    lone_share: float
    #: share of its incidents that were the root cause's own alerts
    root_cause_share: float
    noise_share: float
    noise_lower_bound: float
    #: posterior probability that the rule is background (:mod:`.noise`)
    noise_probability: float
    noisy: bool
    action: str


def evidence_of(s: RuleStats) -> noise.Evidence:
    return noise.Evidence(
        plain=s.plain,
        corroborated=s.corroborated,
        quick=s.plain_quick,
        flapping=s.plain_flapping,
        # counters from before it was counted: every occurrence (as it was then)
        untouched=s.__dict__.get("plain_untouched"),
        noise_verdicts=s.noise_verdicts,
        actionable_verdicts=s.actionable,
    )


def assess(rule: Rule, s: RuleStats, alpha: float, probability: float) -> RuleQuality:
    """The report line of one rule, with what to do about it."""
    lb = lower_bound(s.noise_evidence, s.evidence, alpha)
    share = s.noise_evidence / s.evidence if s.evidence else 0.0
    auto = s.quick_resolves / s.known_resolves if s.known_resolves else None
    flap = s.flapping / s.incidents if s.incidents else 0.0
    noisy = probability > 0.5
    if not noisy:
        action = "keep"
    elif auto is not None and auto >= 0.5:
        action = "fix: it clears by itself within minutes; require it to last longer (for:)"
    elif flap >= 0.5:
        action = "fix: it flaps; add hysteresis or a longer evaluation window"
    else:
        action = "delete, or raise its threshold: it fires alone and nobody acts on it"
    return RuleQuality(
        service=rule[0],
        name=rule[1],
        incidents=s.incidents,
        pages=s.pages,
        firings=s.firings,
        verdicts=s.verdicts,
        noise_verdict_share=s.noise_verdicts / s.verdicts if s.verdicts else None,
        auto_resolved_share=auto,
        flapping_rate=flap,
        isolated_share=s.isolated / s.incidents if s.incidents else 0.0,
        lone_share=s.lone / s.incidents if s.incidents else 0.0,
        root_cause_share=s.root_cause / s.incidents if s.incidents else 0.0,
        noise_share=share,
        noise_lower_bound=lb,
        noise_probability=probability,
        noisy=noisy,
        action=action,
    )


def ranked(stats: dict[Rule, RuleStats], alpha: float, chance: float) -> list[RuleQuality]:
    """Every rule, the ones to fix or delete first (by the probability that the rule is
    background, then by pages). ``chance``: how often an alert is corroborated by coincidence
    alone (the rate model, :func:`.noise.chance_corroboration`)."""
    rules = list(stats)
    probs = noise.background_probability([evidence_of(stats[r]) for r in rules], chance)
    out = [assess(rule, stats[rule], alpha, p) for rule, p in zip(rules, probs, strict=True)]
    out.sort(key=lambda q: (-q.noise_probability, -q.pages, -q.incidents, q.service, q.name))
    return out
