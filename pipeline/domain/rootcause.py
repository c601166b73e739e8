"""Root-cause ranking: which service most likely caused an incident's alerts.

Method (a naive-Bayes log-likelihood over the service graph, every term explainable):

1. Every alert gets a **kind** from its name (or an explicit ``kind`` label):
   ``saturation`` (CPU, memory, disk, pool exhaustion: a local resource problem),
   ``error`` (error ratio, exceptions, 5xx), ``latency`` (server-side latency of the service,
   or latency of calls *to* it), ``downstream`` (latency the service sees on the calls *it*
   makes: points at its dependencies), ``traffic`` (request rate drop: a weak symptom that a
   caller upstream is failing), ``other``.
2. For a hypothesis "service C is the root cause", every alerting service S relates to C as
   ``self`` (S = C), ``up`` (S is a transitive caller of C within the hop limit: failures
   propagate to callers as latency and errors), ``down`` (S is a dependency of C: a failing
   caller sends it less traffic) or ``none``.
3. Each distinct (service, kind) contributes a log-likelihood ratio ``LLR[relation][kind]``:
   how much more likely that observation is if C is the cause than if it is not. Repeats of
   the same kind on the same service add nothing (they are one observation).
   Positive ``up``/``down`` terms decay with hop distance.
4. A candidate that raised no alert itself pays ``silent_llr`` (a silent service is less
   likely the cause, but code defects, databases and load balancers often are silent); it is
   considered only when it is a dependency of an alerting service with latency/error
   symptoms, so a silent dependency shared by several alerting callers can rank first.
5. Time order: the service(s) alerting first get ``first_llr``; a candidate whose own first
   alert comes after ``simultaneity_s`` pays ``late_llr`` (symptoms rarely precede causes).
6. Scores are the softmax of the totals over the candidates (in [0, 1], summing to 1).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.domain.graphs import GraphIndex

KINDS = ("saturation", "error", "latency", "downstream", "traffic", "other")
RELATIONS = ("self", "up", "down", "none")

# Checked in this order; the first kind whose pattern matches the alert name wins.
DEFAULT_KIND_PATTERNS: tuple[tuple[str, str], ...] = (
    ("downstream", r"downstream|client.?latency|dependency|outbound"),
    ("traffic", r"traffic|throughput|drop|qps|rps|no.?requests|absent"),
    (
        "saturation",
        r"cpu|memory|mem(?!ber)|saturat|disk|oom|throttl|pressure|filesystem|inode"
        r"|exhaust|pool|restart|crashloop|evict",
    ),
    ("error", r"error|fail|exception|5xx|panic|unavailable|down|unhealthy"),
    ("latency", r"latenc|slow|duration|timeout|p9\d|response.?time|delay|lag"),
)

# LLR[relation][kind]: log-likelihood ratio of seeing that kind of alert on a service in that
# relation to the candidate, if the candidate is the root cause. Plain-language rationale:
#   self: a resource problem on the candidate itself is the strongest evidence, then errors,
#         then latency; client-side latency on it points away (at its dependencies).
#   up:   callers of a failing service see latency, errors and slow calls; their own
#         saturation is not explained by it.
#   down: dependencies of a failing caller see less traffic; anything else there is not
#         explained (and if a dependency has its own problem, it is the better suspect).
#   none: an unrelated service with real symptoms counts against the hypothesis; traffic
#         drops are neutral (closed-loop load makes them appear anywhere).
DEFAULT_LLR: dict[str, dict[str, float]] = {
    "self": {
        "saturation": 2.0,
        "error": 1.5,
        "latency": 1.0,
        "downstream": -0.5,
        "traffic": 0.0,
        "other": 0.5,
    },
    "up": {
        "saturation": -1.0,
        "error": 1.0,
        "latency": 1.0,
        "downstream": 1.0,
        "traffic": 0.2,
        "other": 0.0,
    },
    "down": {
        "saturation": -0.5,
        "error": -0.5,
        "latency": -0.5,
        "downstream": -0.5,
        "traffic": 0.2,
        "other": 0.0,
    },
    "none": {
        "saturation": -1.0,
        "error": -1.0,
        "latency": -1.0,
        "downstream": -1.0,
        "traffic": 0.0,
        "other": -0.5,
    },
}

# Kinds that mark a service as really unhealthy (not merely seeing less traffic).
SYMPTOM_KINDS = frozenset({"saturation", "error", "latency", "downstream", "other"})


@dataclass(frozen=True)
class RankSettings:
    """Knobs of the ranking (documented in docs/correlation.md)."""

    hop_decay: float = 0.75
    silent_llr: float = -1.0
    first_llr: float = 0.5
    late_llr: float = 0.0
    simultaneity_s: float = 60.0
    max_candidates: int = 5


class KindClassifier:
    """Alert name -> kind, cached (names repeat)."""

    def __init__(self, patterns: Iterable[tuple[str, str]] = DEFAULT_KIND_PATTERNS) -> None:
        self._patterns = [(k, re.compile(p, re.IGNORECASE)) for k, p in patterns]
        self._cache: dict[str, str] = {}

    def __call__(self, name: str, labels: Mapping[str, str] | None = None) -> str:
        if labels:
            explicit = labels.get("kind")
            if explicit in KINDS:
                return explicit
        k = self._cache.get(name)
        if k is None:
            k = "other"
            for kind, pat in self._patterns:
                if pat.search(name):
                    k = kind
                    break
            if len(self._cache) < 100_000:
                self._cache[name] = k
        return k


@dataclass
class Ranked:
    service: str
    score: float
    llr: float
    alerting: bool
    reasons: list[str]


def _explained_phrase(rel: str, hops: int, kinds: Iterable[str]) -> str:
    ks = "/".join(sorted(kinds))
    if rel == "up":
        return f"caller {hops} hop{'s' if hops > 1 else ''} upstream shows {ks}"
    return f"dependency {hops} hop{'s' if hops > 1 else ''} downstream shows {ks}"


def rank(
    evidence: Mapping[str, set[str]],
    first_seen: Mapping[str, float],
    graph: GraphIndex,
    settings: RankSettings,
    llr: Mapping[str, Mapping[str, float]] = DEFAULT_LLR,
    extra_candidates: Iterable[str] = (),
) -> list[Ranked]:
    """Rank root-cause candidates for one incident.

    ``evidence``: alerting service -> set of alert kinds; ``first_seen``: service -> epoch of
    its first alert in the incident. Returns candidates best first, at most
    ``settings.max_candidates``.
    """
    if not evidence:
        return []
    t0 = min(first_seen.values())
    candidates: dict[str, bool] = dict.fromkeys(evidence, True)
    for c in extra_candidates:
        candidates.setdefault(c, False)
    # Silent candidates: dependencies (within the hop limit) of services with real symptoms.
    for s, kinds in evidence.items():
        if kinds & {"error", "latency", "downstream"}:
            for d in graph.down(s):
                candidates.setdefault(d, False)
    none_row = llr["none"]
    base = sum(none_row[k] for kinds in evidence.values() for k in kinds)
    results: list[Ranked] = []
    decay = settings.hop_decay
    for c, alerting in candidates.items():
        total = base
        reasons: list[str] = []
        explained_up: list[str] = []
        explained_down: list[str] = []
        up_c = graph.up(c)
        down_c = graph.down(c)
        for s, kinds in evidence.items():
            if s == c:
                rel, hops = "self", 0
            elif s in up_c:
                rel, hops = "up", up_c[s]
            elif s in down_c:
                rel, hops = "down", down_c[s]
            else:
                continue
            row = llr[rel]
            f = decay ** (hops - 1) if hops > 1 else 1.0
            for k in kinds:
                v = row[k]
                total += (v * f if v > 0 else v) - none_row[k]
            if rel == "up" and kinds & SYMPTOM_KINDS:
                explained_up.append(s)
            elif rel == "down" and "traffic" in kinds and not kinds & SYMPTOM_KINDS:
                explained_down.append(s)
            elif rel == "down" and kinds & SYMPTOM_KINDS:
                reasons.append(f"its dependency {s} is unhealthy ({'/'.join(sorted(kinds))})")
        if alerting:
            own = evidence[c]
            reasons.insert(0, f"alerts on itself: {'/'.join(sorted(own))}")
            dt = first_seen[c] - t0
            if dt <= settings.simultaneity_s:
                total += settings.first_llr
                reasons.append(
                    "alerted first" if dt <= 0 else f"alerted within {dt:.0f} s of first"
                )
            else:
                total += settings.late_llr
                reasons.append(f"first alerted {dt:.0f} s after the incident began")
            if not any(d in evidence and evidence[d] & SYMPTOM_KINDS for d in down_c):
                reasons.append("its dependencies are healthy")
        else:
            total += settings.silent_llr
            reasons.insert(0, "raised no alert itself")
        if explained_up:
            explained_up.sort(key=lambda s: (up_c[s], s))
            shown = ", ".join(
                f"{s} ({up_c[s]} hop{'s' if up_c[s] > 1 else ''})" for s in explained_up[:4]
            )
            more = f" and {len(explained_up) - 4} more" if len(explained_up) > 4 else ""
            reasons.append(f"explains symptoms of its callers {shown}{more}")
        if explained_down:
            reasons.append(f"explains traffic drops on {len(explained_down)} dependencies")
        results.append(Ranked(c, 0.0, total, alerting, reasons))
    m = max(r.llr for r in results)
    z = sum(math.exp(r.llr - m) for r in results)
    for r in results:
        r.score = math.exp(r.llr - m) / z
    # Deterministic order: evidence, then alerting before silent, then (Occam) the candidate
    # with fewer dependencies within the hop limit (fewer hidden alternative causes), then name.
    results.sort(
        key=lambda r: (-round(r.llr, 9), not r.alerting, len(graph.down(r.service)), r.service)
    )
    return results[: settings.max_candidates]
