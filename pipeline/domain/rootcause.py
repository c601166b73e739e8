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
   likely the cause, but code defects, databases and load balancers often are silent); every
   dependency (within the hop limit) of a service with latency/error symptoms is considered,
   so a silent dependency shared by several alerting callers can rank first, and the silent
   alternatives behind a single symptomatic service are listed after it. Load drops point
   both ways: every direct caller of a service whose load dropped is considered (requests
   failing in it never reach its dependencies), and so is every direct dependency of a
   service that only lost load (under closed-loop load a caller waiting on a failing
   dependency completes fewer requests, so its load falls too).
5. Time order (the cause shows no later than its symptoms): a candidate alerting within
   ``simultaneity_s`` of the incident's first alert gets ``first_llr``, a later one
   ``late_llr``. A silent candidate's onset cannot be seen on itself, only on its callers: it
   gets ``first_llr`` when a caller (within the hop limit) with latency/error symptoms alerted
   within ``simultaneity_s`` of the first alert, else ``late_llr``.
6. Scores are the softmax of the totals over the candidates (in [0, 1], summing to 1).
   Equal totals: alerting before silent, then the one that showed first (its first alert; a
   silent one's nearest neighbours' first symptom), then fewer dependencies, then name.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
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

# Kinds a failing dependency propagates to its callers.
_PROPAGATED = frozenset({"error", "latency", "downstream"})

# Own symptoms a service shows while it waits on a slow dependency.
_WAITING = frozenset({"error", "latency"})

# Kinds that are a consequence of what happens elsewhere, never a sign of being first.
_WEAK = frozenset({"traffic"})

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
    #: per direct caller of a candidate that raised no alert (evidence of absence)
    quiet_caller_llr: float = -0.4
    #: per direct dependency of a candidate that raised no alert
    quiet_dependency_llr: float = 0.0

    def __post_init__(self) -> None:
        if self.max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1 (got {self.max_candidates})")
        if not 0.0 < self.hop_decay <= 1.0:
            raise ValueError(f"hop_decay must be in (0, 1] (got {self.hop_decay})")
        if self.simultaneity_s < 0:
            raise ValueError(f"simultaneity_s must be >= 0 (got {self.simultaneity_s})")


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


def _relations(
    c: str, evidence: Mapping[str, Collection[str]], graph: GraphIndex
) -> list[tuple[str, str, int]]:
    """(service, relation, hops) for every alerting service related to candidate ``c``."""
    up_c = graph.up(c)
    down_c = graph.down(c)
    out: list[tuple[str, str, int]] = []
    if c in evidence:
        out.append((c, "self", 0))
    if len(up_c) + len(down_c) <= len(evidence):
        for s, h in up_c.items():
            if s in evidence:
                out.append((s, "up", h))
        for s, h in down_c.items():
            if s in evidence:
                out.append((s, "down", h))
    else:
        for s in evidence:
            hu = up_c.get(s)
            if hu is not None:
                out.append((s, "up", hu))
                continue
            hd = down_c.get(s)
            if hd is not None:
                out.append((s, "down", hd))
    return out


class RankCache:
    """Incremental state of :func:`rank` for one incident (an optimisation, never persisted).

    Holds, per candidate, the sum of the evidence terms of the alerting services related to
    it, and per service how many symptomatic services it is a dependency of. Each
    call applies only the services whose kinds changed since the previous call (removing
    their old terms, adding the new ones), so re-ranking a large incident costs the changed
    evidence's neighbourhoods plus one pass over the candidates, not a pass over every
    candidate's neighbourhood. Results are identical to a fresh computation.
    """

    __slots__ = ("began", "callers_of", "deps_of", "kinds", "nearest", "terms", "times")

    def __init__(self) -> None:
        self.kinds: dict[str, frozenset[str]] = {}
        self.times: dict[str, float] = {}  # service -> the first-seen time applied
        self.terms: dict[str, float] = {}
        self.deps_of: dict[str, int] = {}  # service -> symptomatic services it is a dep of
        self.callers_of: dict[str, int] = {}  # service -> its direct deps with load drops
        # candidate -> earliest onset of the symptoms it explains (latency/error symptoms of
        # callers within the hop limit, load drops of direct dependencies) / of those next
        # to it (direct callers, direct dependencies)
        self.began: dict[str, float] = {}
        self.nearest: dict[str, float] = {}


def _apply(
    cache: RankCache,
    s: str,
    kinds: frozenset[str],
    sign: float,
    graph: GraphIndex,
    llr: Mapping[str, Mapping[str, float]],
    fh: list[float],
) -> None:
    none_row = llr["none"]
    terms = cache.terms
    # slow outbound calls without a resource problem explain the service's own latency and
    # errors (it waits on a dependency): as its own cause, those count for nothing
    waits = "downstream" in kinds and "saturation" not in kinds
    for rel in ("self", "up", "down"):
        row = llr[rel]
        pos = neg = 0.0
        for k in kinds:
            v = 0.0 if waits and rel == "self" and k in _WAITING else row[k]
            if v > 0:
                pos += v
            else:
                neg += v
            neg -= none_row[k]
        if rel == "self":
            terms[s] = terms.get(s, 0.0) + sign * (pos + neg)
        elif rel == "up":  # s is a caller of every candidate in down(s)
            for c, h in graph.down(s).items():
                terms[c] = terms.get(c, 0.0) + sign * (fh[h] * pos + neg)
        else:  # s is a dependency of every candidate in up(s)
            for c, h in graph.up(s).items():
                terms[c] = terms.get(c, 0.0) + sign * (fh[h] * pos + neg)
    step = 1 if sign > 0 else -1
    if kinds & _PROPAGATED:
        deps_of = cache.deps_of
        for d in graph.down(s):
            deps_of[d] = deps_of.get(d, 0) + step
    if kinds & _WEAK:
        callers_of = cache.callers_of
        for c in graph.callers1(s):
            callers_of[c] = callers_of.get(c, 0) + step
        if not kinds & _PROPAGATED:  # (else its dependencies are candidates already)
            deps_of = cache.deps_of
            for d in graph.deps1(s):
                deps_of[d] = deps_of.get(d, 0) + step


def _apply_onset(
    cache: RankCache, s: str, kinds: Collection[str], t: float, graph: GraphIndex
) -> None:
    """Fold ``s``'s onset ``t`` into the onsets of the candidates that explain it."""
    began, nearest = cache.began, cache.nearest
    if not _PROPAGATED.isdisjoint(kinds):
        for c, h in graph.down(s).items():
            if t < began.get(c, math.inf):
                began[c] = t
            if h == 1 and t < nearest.get(c, math.inf):
                nearest[c] = t
    if not _WEAK.isdisjoint(kinds):
        # a load drop is explained by a failing caller above it and, under closed-loop
        # load, by a failing dependency below it (its dependencies with propagating
        # symptoms are timed above already)
        below = graph.deps1(s) if _PROPAGATED.isdisjoint(kinds) else ()
        for c in (*graph.callers1(s), *below):
            if t < began.get(c, math.inf):
                began[c] = t
            if t < nearest.get(c, math.inf):
                nearest[c] = t


def _update(
    cache: RankCache,
    evidence: Mapping[str, Collection[str]],
    first_seen: Mapping[str, float],
    graph: GraphIndex,
    llr: Mapping[str, Mapping[str, float]],
    fh: list[float],
) -> None:
    seen = cache.kinds
    times = cache.times
    known = 0
    restart = len(seen) > len(evidence)  # evidence shrank (a split)
    changed: list[tuple[str, frozenset[str] | None, Collection[str]]] = []
    if not restart:
        for svc, kinds in evidence.items():
            old = seen.get(svc)
            if old is not None:
                known += 1
                t = first_seen[svc]
                if len(old) == len(kinds) and old.issuperset(kinds) and times[svc] == t:
                    continue
                if t > times[svc] or not old.issubset(kinds):
                    restart = True  # an onset moved later or a kind left: start over
                    break
            changed.append((svc, old, kinds))
    if restart or known != len(seen):  # (some service left the evidence: start over)
        cache.__init__()  # type: ignore[misc]
        seen = cache.kinds
        times = cache.times
        changed = [(svc, None, kinds) for svc, kinds in evidence.items()]
    for svc, old, kinds in changed:
        new = frozenset(kinds)
        if old != new:
            if old is not None:
                _apply(cache, svc, old, -1.0, graph, llr, fh)
            _apply(cache, svc, new, 1.0, graph, llr, fh)
            seen[svc] = new
        t = times[svc] = first_seen[svc]
        _apply_onset(cache, svc, new, t, graph)


def rank(
    evidence: Mapping[str, Collection[str]],
    first_seen: Mapping[str, float],
    graph: GraphIndex,
    settings: RankSettings,
    llr: Mapping[str, Mapping[str, float]] = DEFAULT_LLR,
    extra_candidates: Iterable[str] = (),
    cache: RankCache | None = None,
    related: Callable[[str], Iterable[str]] | None = None,
) -> list[Ranked]:
    """Rank root-cause candidates for one incident.

    ``evidence``: alerting service -> set of alert kinds; ``first_seen``: service -> epoch of
    its first alert in the incident. Returns candidates best first, at most
    ``settings.max_candidates``, with plain-language reasons. Pass the same ``cache`` for
    successive calls on one growing incident to re-rank incrementally. ``related(c)``: the
    services learned to be related to ``c`` although the graph has no path (co-occurrence).

    Where the graph cannot say how an alerting service relates to a candidate (either has no
    edges, or they are learned to be related), the relation is *unknown*, not *none*: its
    terms are the mean of the ``up`` and ``none`` rows, so missing topology does not count
    against a candidate as evidence of no relation would.
    """
    if not evidence:
        return []
    if cache is None:
        cache = RankCache()
    fh = [1.0] + [settings.hop_decay ** (h - 1) for h in range(1, graph.hops + 2)]
    _update(cache, evidence, first_seen, graph, llr, fh)
    t0 = min(first_seen.values())
    candidates: dict[str, bool] = dict.fromkeys(evidence, True)
    for c in extra_candidates:
        candidates.setdefault(c, False)
    # Silent candidates: every dependency (within the hop limit) of a service with
    # latency/error symptoms. The evidence decides among them: one shared by several
    # symptomatic callers, or lying between two symptomatic services (a dependency of one, a
    # caller of another: a broken link in a chain of symptoms), collects more of it.
    for d, n in cache.deps_of.items():
        if n > 0:
            candidates.setdefault(d, False)
    # ... and every direct caller of a service whose load dropped: requests that fail in a
    # service never reach its dependencies, so a silent code defect shows below it as well
    # (the direct dependencies of a service that only lost load are in deps_of: its
    # requests complete slower when a dependency fails, so under closed-loop load fewer come)
    for c, n in cache.callers_of.items():
        if n > 0:
            candidates.setdefault(c, False)
    sim = settings.simultaneity_s
    none_row = llr["none"]
    base = sum(none_row[k] for kinds in evidence.values() for k in kinds)
    # unknown relation instead of none: (up + none) / 2 - none = (up - none) / 2 per kind
    up_row = llr["up"]
    unknown = {
        s: sum((up_row[k] - none_row[k]) / 2 for k in kinds) for s, kinds in evidence.items()
    }
    unplaced = [s for s in evidence if graph.unplaced(s)]
    unplaced_total = sum(unknown[s] for s in unplaced)
    all_total = (
        sum(unknown.values()) if unplaced_total or any(graph.unplaced(c) for c in evidence) else 0.0
    )
    terms = cache.terms
    first, late, silent_llr = settings.first_llr, settings.late_llr, settings.silent_llr
    quiet_up, quiet_down = settings.quiet_caller_llr, settings.quiet_dependency_llr
    items: list[tuple[float, str, bool]] = []
    shown: dict[str, float] = {}  # candidate -> when it showed (its first alert, or its
    # nearest neighbours' first symptom for a silent one)
    for c, alerting in candidates.items():
        total = base + terms.get(c, 0.0)
        if alerting and graph.unplaced(c):
            total += all_total - unknown[c]
        else:
            total += unplaced_total
            if related is not None and alerting:
                total += _learned_unknown(c, evidence, graph, related, unknown)
        if not alerting and (quiet_up or quiet_down):
            total += _quiet(c, evidence, graph, quiet_up, quiet_down)
        # alerting with traffic drops only is no symptom of its own (a drop is a consequence
        # upstream): such a candidate pays the silent term, and its onset shows at its
        # callers, as a silent candidate's does (its quiet callers are not held against it)
        own = alerting and not _WEAK.issuperset(evidence[c])
        if not own:
            total += silent_llr
        total += first if _onset(c, own, first_seen, t0, cache)[0] <= sim else late
        items.append((total, c, alerting))
        if alerting:
            shown[c] = first_seen[c]
        else:
            shown[c] = cache.nearest.get(c, math.inf)
    m = max(x[0] for x in items)
    z = sum(math.exp(x[0] - m) for x in items)
    k = settings.max_candidates
    if len(items) > k:
        # only candidates that can make the top k (ties included) need the full order
        kth = heapq.nlargest(k, (x[0] for x in items))[-1] - 1e-6
        items = [x for x in items if x[0] >= kth]
    # Deterministic order: evidence, then alerting before silent, then the one that showed
    # first (the cause shows no later than its symptoms: where the topology relates
    # nothing, the evidence of unplaced services ties and their order is what is left),
    # then (Occam) fewer dependencies within the hop limit (fewer hidden alternative
    # causes), then name.
    totals = sorted(
        (-round(total, 9), not alerting, shown[c], len(graph.down(c)), c)
        for total, c, alerting in items
    )
    results: list[Ranked] = []
    for neg, silent, _, _, c in totals[: settings.max_candidates]:
        total = -neg
        results.append(
            Ranked(
                c,
                math.exp(total - m) / z,
                total,
                not silent,
                _reasons(c, not silent, evidence, first_seen, t0, graph, settings, cache, related),
            )
        )
    return results


def _onset(
    c: str, own: bool, first_seen: Mapping[str, float], t0: float, cache: RankCache
) -> tuple[float, float]:
    """How long after the symptoms ``c`` explains began its own onset showed, and when they
    began (``inf`` when it shows nowhere).

    The symptoms ``c`` explains: latency/error symptoms of its callers within the hop limit
    and load drops of its direct dependencies. A cause shows no later than its symptoms; an
    alerting candidate's onset is its first alert, a silent one's the first symptom of its
    nearest neighbours (direct callers, direct dependencies' drops). Alerts ``c`` does not
    explain set no clock for it (an unrelated alert that opened the incident earlier does
    not make ``c`` late); an alerting candidate that explains nothing else is timed from
    the incident's first alert ``t0``.
    """
    began = cache.began.get(c, math.inf)
    if own:
        if began == math.inf:
            return first_seen[c] - t0, t0
        return first_seen[c] - began, began
    nearest = cache.nearest.get(c, math.inf)
    if nearest == math.inf:
        return math.inf, began
    return nearest - began, began


def _learned_unknown(
    c: str,
    evidence: Mapping[str, Collection[str]],
    graph: GraphIndex,
    related: Callable[[str], Iterable[str]],
    unknown: Mapping[str, float],
) -> float:
    """The unknown-relation correction for alerting services learned to be related to ``c``
    that the graph does not relate to it (unplaced ones are corrected already)."""
    total = 0.0
    for s in related(c):
        if s in evidence and not graph.unplaced(s) and graph.hops_between(c, s) is None:
            total += unknown[s]
    return total


def _quiet(
    c: str,
    evidence: Mapping[str, Collection[str]],
    graph: GraphIndex,
    up_llr: float,
    down_llr: float,
) -> float:
    """Evidence of absence: ``up_llr`` per direct caller of ``c`` and ``down_llr`` per direct
    dependency that raised no alert (the cause's neighbours mostly show it: a candidate
    whose neighbours stay quiet explains less)."""
    total = 0.0
    if up_llr:
        for s in graph.callers1(c):
            if s not in evidence:
                total += up_llr
    if down_llr:
        for s in graph.deps1(c):
            if s not in evidence:
                total += down_llr
    return total


def _reasons(
    c: str,
    alerting: bool,
    evidence: Mapping[str, Collection[str]],
    first_seen: Mapping[str, float],
    t0: float,
    graph: GraphIndex,
    settings: RankSettings,
    cache: RankCache,
    related: Callable[[str], Iterable[str]] | None = None,
) -> list[str]:
    reasons: list[str] = []
    explained_up: list[tuple[int, str]] = []
    explained_down = 0
    unhealthy_deps: list[str] = []
    sym_deps: list[str] = []  # dependencies with propagating symptoms
    for s, rel, hops in _relations(c, evidence, graph):
        kinds = evidence[s]
        if rel == "up" and not SYMPTOM_KINDS.isdisjoint(kinds):
            explained_up.append((hops, s))
        elif rel == "down":
            if not _PROPAGATED.isdisjoint(kinds):
                sym_deps.append(s)
            if not SYMPTOM_KINDS.isdisjoint(kinds):
                unhealthy_deps.append(f"{s} ({'/'.join(sorted(kinds))})")
            else:
                explained_down += 1
    if alerting:
        own = evidence[c]
        reasons.append(f"alerts on itself: {'/'.join(sorted(own))}")
        if "downstream" in own and "saturation" not in own and not _WAITING.isdisjoint(own):
            reasons.append(
                "its slow outbound calls explain its own latency/errors (they count for its "
                "dependencies, not for it)"
            )
        weak = _WEAK.issuperset(own)
        if weak:
            reasons.append(
                "traffic drops only: a consequence, no symptom of its own (weighed as a "
                "silent candidate)"
            )
        else:
            dt, began = _onset(c, True, first_seen, t0, cache)
            since = "the first alert" if began == t0 else "the symptoms it explains"
            if dt <= 0:
                reasons.append(f"alerted first{'' if began == t0 else ' of what it explains'}")
            elif dt <= settings.simultaneity_s:
                reasons.append(f"alerted within {dt:.0f} s of {since}")
            else:
                reasons.append(f"first alerted {dt:.0f} s after {since}")
    else:
        reasons.append("raised no alert itself")
        callers = sorted(explained_up)
        sym_deps.sort()
        if callers and sym_deps:
            reasons.append(
                f"lies between alerting callers ({', '.join(s for _, s in callers[:2])}) and "
                f"alerting dependencies ({', '.join(sym_deps[:2])}): a broken link in the chain"
            )
        elif len([1 for _, s in callers if not _PROPAGATED.isdisjoint(evidence[s])]) > 1:
            reasons.append("a dependency shared by several alerting callers")
        dt, _ = _onset(c, False, first_seen, t0, cache)
        if dt <= settings.simultaneity_s:
            nearest = sorted(
                s
                for s in (*graph.callers1(c), *graph.deps1(c))
                if s in evidence
                and not (_PROPAGATED | _WEAK if s in graph.callers1(c) else _WEAK).isdisjoint(
                    evidence[s]
                )
            )
            reasons.append(
                f"its nearest neighbour{'s' if len(nearest) > 1 else ''} "
                f"{', '.join(nearest[:2])} {'were' if len(nearest) > 1 else 'was'} among the "
                "first to alert of what it explains (a silent cause shows first next to it)"
            )
        dropped = sorted(
            d for d in graph.deps1(c) if d in evidence and not _WEAK.isdisjoint(evidence[d])
        )
        if dropped:
            reasons.append(
                f"its dependenc{'ies' if len(dropped) > 1 else 'y'} {', '.join(dropped[:3])} "
                "lost load (requests failing in it never reach them)"
            )
        waiting = sorted(
            s for s in graph.callers1(c) if s in evidence and _WEAK.issuperset(evidence[s])
        )
        if waiting:
            many = len(waiting) > 1
            reasons.append(
                f"its caller{'s' if many else ''} {', '.join(waiting[:3])} lost load (waiting "
                f"on it, {'they complete' if many else 'it completes'} fewer requests)"
            )
        if settings.quiet_caller_llr:
            quiet = sorted(x for x in graph.callers1(c) if x not in evidence)
            if quiet:
                reasons.append(
                    f"counts less: its caller{'s' if len(quiet) > 1 else ''} "
                    f"{', '.join(quiet[:3])} raised no alert"
                )
    if graph.unplaced(c) and alerting:
        reasons.append(
            "the topology places it nowhere: how the other alerts relate to it is unknown "
            "(counted between related and unrelated)"
        )
    else:
        unplaced = sorted(s for s in evidence if s != c and graph.unplaced(s))
        if unplaced:
            reasons.append(
                f"the topology places {', '.join(unplaced[:3])} nowhere: "
                "counted as an unknown relation, not as unrelated"
            )
        if related is not None and alerting:
            cooc = sorted(
                s
                for s in related(c)
                if s in evidence and not graph.unplaced(s) and graph.hops_between(c, s) is None
            )
            if cooc:
                reasons.append(
                    f"inferred relation: {', '.join(cooc[:3])} kept starting to alert with it "
                    "(co-occurrence learned online; no path in the topology), counted as an "
                    "unknown relation, not as unrelated"
                )
    learned = graph.learned_calls(c)
    if learned:
        by_origin: dict[str, list[str]] = {}
        for a, b in learned[:3]:
            by_origin.setdefault(graph.learned_from((a, b)), []).append(f"{a} -> {b}")
        for origin, calls in by_origin.items():
            reasons.append(f"calls learned from {origin} (not in the topology): {', '.join(calls)}")
    if unhealthy_deps:
        reasons.append("its dependencies are unhealthy: " + ", ".join(sorted(unhealthy_deps)[:3]))
    elif alerting:
        if graph.down(c):
            reasons.append("its dependencies show no symptoms")
        elif graph.known(c):
            reasons.append("no dependencies in the topology (nothing below it to blame)")
        else:
            reasons.append("not in the topology")
    if explained_up:
        explained_up.sort()
        shown = ", ".join(f"{s} ({h} hop{'s' if h > 1 else ''})" for h, s in explained_up[:4])
        more = f" and {len(explained_up) - 4} more" if len(explained_up) > 4 else ""
        reasons.append(f"explains symptoms of its callers {shown}{more}")
    if explained_down:
        n = explained_down
        reasons.append(f"explains traffic drops on {n} dependenc{'y' if n == 1 else 'ies'}")
    return reasons
