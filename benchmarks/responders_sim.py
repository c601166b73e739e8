"""A year of incidents in a simulated company, and who really resolves each one.

Incidents arrive as a Poisson process; the true cause is a service (some fail far more often
than others) with a fault kind; its callers up to two hops show symptoms. The correlator's
root cause is right 85% of the time; otherwise it names a symptom service, usually with the
true cause second among the candidates.

**Who resolves** (hidden from the recommender; modelled on how on-call teams work): the
primary on call of the team owning the *true* cause is paged. If they master the problem
(skill for that service and fault kind >= 0.45) they fix it (nine times in ten). Otherwise
they pull in the most able person who is on call where it matters: their team's secondary,
or the on-call people of the teams owning the cause's graph neighbours (skill plus a little
noise: people are not perfectly ranked). One incident in 25 is fixed by the team's best
expert even though they are off call (woken up, or just happened to be around): nothing
that respects on-call could predict those.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from benchmarks.responders_company import KINDS, Company
from pipeline.domain.oncall import who
from pipeline.domain.oncall.recommend_input import IncidentSummary

ALERTS = {
    "latency": ("HighLatencyP99", "SlowResponses"),
    "errors": ("HighErrorRate", "HTTP5xxBurst"),
    "saturation": ("CPUThrottling", "MemoryPressure"),
    "crash": ("PodCrashLooping", "ContainerOOMKilled"),
    "config": ("ConfigReloadFailed", "CertificateExpiry"),
}
TEXTS = {
    "latency": "p99 latency rose to {v}s, requests queueing",
    "errors": "5xx error rate {v}% above the error budget",
    "saturation": "cpu throttled, memory at {v}% of the limit",
    "crash": "container restarted {v} times, exit code 137",
    "config": "config reload failed {v} times after deploy",
}
SYMPTOMS = ("UpstreamLatency", "UpstreamErrors")
ROOT_CAUSE_ACCURACY = 0.85
COMPETENT = 0.45
OFF_CALL_SHARE = 0.04


@dataclass(frozen=True)
class SimIncident:
    summary: IncidentSummary
    true_cause: str
    kind: str
    resolver: str
    resolved_at: datetime
    on_call: frozenset[str]
    #: baseline 1: the primary on call of the team owning the reported root cause
    primary: str | None


def on_call_now(company: Company, at: datetime) -> dict[str, str | None]:
    """Schedule -> person on call (the sim's own truth, straight from ``who``)."""
    return {name: who(s, at).person for name, s in company.directory.schedules.items()}


def incidents(
    company: Company, seed: int, start: datetime, days: int, per_day: float
) -> Iterator[SimIncident]:
    """The year's incidents in time order."""
    rng = random.Random(seed * 7919 + 1)
    services = company.topology.services
    weights = [company.failure_rate[s] for s in services]
    t = start
    end = start + timedelta(days=days)
    n = 0
    while True:
        t += timedelta(days=rng.expovariate(per_day))
        if t >= end:
            return
        n += 1
        cause = rng.choices(services, weights)[0]
        kind = rng.choice(KINDS)
        symptoms = _symptoms(company, cause, rng)
        reported = cause
        candidates = [cause, *symptoms[:2]]
        if symptoms and rng.random() > ROOT_CAUSE_ACCURACY:
            reported = symptoms[0]
            rest = [s for s in symptoms if s != reported]
            candidates = [reported, cause, *rest[:1]] if rng.random() < 0.7 else [reported, *rest]
        names = [rng.choice(ALERTS[kind])] + [rng.choice(SYMPTOMS) for _ in symptoms[:2]]
        text = TEXTS[kind].format(v=rng.randint(2, 95)) + f" on {cause}"
        summary = IncidentSummary(
            id=f"inc-{n}",
            at=t,
            root_cause=reported,
            candidates=tuple(dict.fromkeys(candidates)),
            services=tuple(dict.fromkeys([cause, *symptoms])),
            alert_names=tuple(dict.fromkeys(names)),
            text=text,
        )
        duty = on_call_now(company, t)
        resolver = _resolver(company, cause, kind, duty, rng)
        team = company.team_of[reported]
        yield SimIncident(
            summary=summary,
            true_cause=cause,
            kind=kind,
            resolver=resolver,
            resolved_at=t + timedelta(minutes=rng.lognormvariate(4.2, 0.8)),
            on_call=frozenset(p for p in duty.values() if p),
            primary=duty[f"{team}-primary"],
        )


def _symptoms(company: Company, cause: str, rng: random.Random) -> list[str]:
    """Callers up to two hops up, at most four, nearer first."""
    near = sorted(company.topology.callers(cause))
    far = sorted({c for s in near for c in company.topology.callers(s)} - set(near) - {cause})
    rng.shuffle(near)
    rng.shuffle(far)
    return (near + far)[:4]


def _resolver(
    company: Company, cause: str, kind: str, duty: dict[str, str | None], rng: random.Random
) -> str:
    team = company.team_of[cause]
    skill = company.skill
    if rng.random() < OFF_CALL_SHARE:
        return max(company.members[team], key=lambda p: skill(p, cause, kind))
    primary = duty[f"{team}-primary"]
    if primary is not None and skill(primary, cause, kind) >= COMPETENT and rng.random() < 0.9:
        return primary
    teams = {team} | {company.team_of[n] for n in company.neighbours(cause)}
    pool = {p for name, p in duty.items() if p and name.rsplit("-", 1)[0] in teams}
    if primary is not None:
        pool.add(primary)
    if not pool:
        return max(company.members[team], key=lambda p: skill(p, cause, kind))
    return max(sorted(pool), key=lambda p: skill(p, cause, kind) + rng.gauss(0, 0.08))
