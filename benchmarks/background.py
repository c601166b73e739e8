"""Background alert rules for the synthetic storms (:func:`benchmarks.synthetic.storm`): rules
that fire on schedules of their own, independent of the faults, as real estates have them (a
disk check that trips every few hours, a certificate probe, a flapping health check). The
insights benchmark mixes them into a storm and checks that the rules the insights call noisy
are these.

Each background rule sits on a random service and fires as a Poisson process (mean gap drawn
between ``min_gap_s`` and ``max_gap_s``), in one of three manners: clears by itself within
minutes, flaps (three short firings within two minutes), or lasts a while. Seeded and
deterministic; alert ids start with ``bg-``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.domain.schemas import Alert, AlertStatus, Severity
from pipeline.domain.topology import Topology

NAMES = (
    "DiskIOSpike",
    "ClockSkew",
    "CertProbeSlow",
    "GCPauseLong",
    "ConnReset",
    "InodeUsage",
    "DNSLookupSlow",
    "ThreadPoolBusy",
)
MANNERS = ("quick", "flapping", "lasting")
#: the storm's own noise: :func:`benchmarks.synthetic.storm` labels noise alerts with these pods
STORM_NOISE_PODS = frozenset({"n", "u"})


@dataclass(frozen=True)
class BackgroundRule:
    service: str
    name: str
    mean_gap_s: float
    manner: str  # "quick", "flapping" or "lasting"


def background_rules(
    topology: Topology,
    n_rules: int,
    seed: int = 3,
    min_gap_s: float = 3_600.0,
    max_gap_s: float = 6 * 3_600.0,
) -> list[BackgroundRule]:
    """``n_rules`` distinct background rules on random services of ``topology``."""
    rng = random.Random(seed)
    services = sorted(topology.graph.nodes)
    chosen: set[tuple[str, str]] = set()
    while len(chosen) < min(n_rules, len(services) * len(NAMES)):
        chosen.add((rng.choice(services), rng.choice(NAMES)))
    return [
        BackgroundRule(s, n, rng.uniform(min_gap_s, max_gap_s), rng.choice(MANNERS))
        for s, n in sorted(chosen)
    ]


def background_alerts(
    rules: list[BackgroundRule], start: float, end: float, seed: int = 3
) -> list[Alert]:
    """Firing and resolved alerts of ``rules`` between epoch seconds ``start`` and ``end``."""
    rng = random.Random(seed)
    out: list[Alert] = []
    for k, rule in enumerate(rules):
        t = start + rng.expovariate(1 / rule.mean_gap_s)
        while t < end:
            if rule.manner == "flapping":
                spans = [(t + i * 40, rng.uniform(10, 30)) for i in range(3)]
            elif rule.manner == "quick":
                spans = [(t, rng.uniform(30, 240))]
            else:
                spans = [(t, rng.uniform(900, 3600))]
            for at, dur in spans:
                base = f"bg-{k}-{len(out)}"
                for status, when in ((AlertStatus.firing, at), (AlertStatus.resolved, at + dur)):
                    out.append(
                        Alert(
                            id=f"{base}-{status.value}",
                            source="synthetic-background",
                            service=rule.service,
                            name=rule.name,
                            severity=Severity.warning,
                            status=status,
                            timestamp=datetime.fromtimestamp(when, UTC),
                            labels={"pod": "b", "alertname": rule.name},
                        )
                    )
            t += rng.expovariate(1 / rule.mean_gap_s)
    return out


def background_only(alerts: list[Alert], rules: list[BackgroundRule]) -> set[tuple[str, str]]:
    """The rules (service, name) all of whose firing alerts are background: the added rules
    and the storm's own noise rules, unless a fault also raised them."""
    noise = {(r.service, r.name) for r in rules}
    seen: dict[tuple[str, str], bool] = {}
    for a in alerts:
        if a.status is AlertStatus.firing:
            rule = (a.service, a.name)
            bg = rule in noise or a.labels.get("pod") in STORM_NOISE_PODS
            seen[rule] = seen.get(rule, True) and bg
    return {r for r, bg in seen.items() if bg}
