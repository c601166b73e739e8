"""Where the service graph looks wrong, judged from which services alert together.

Every closed incident is a *basket*: the services that alerted in it, when each first fired,
and its root cause. Its **leader** is the service that fired first (a failure shows in the
failing service before it shows in its callers). Two services alerting in one incident are
**explained** by the graph when one reaches the other along dependency edges, or when a
service that alerted no later than either of them (or the incident's silent root cause) is a
common dependency of both (a failing dependency shows in its callers) or a common caller of
both (a failing caller shows in its dependencies as a traffic change). A caller that only
echoes a failure further down alerts after it and explains nothing.

**Suggested missing edges** (caller -> callee). If the caller depended on the callee, the
callee's failures would show in the caller: in the incidents the callee led, the caller
alerts (without explanation) more often than it alerts where nothing in the graph relates
it. Conditional on who led: of the ``N`` incidents not led by a service the graph links with
the caller, the caller alerted in ``n_a``; the callee led ``L_b`` of them; the number of the
callee's incidents the caller shows up in by chance is hypergeometric, so a busy service that
alerts in half of all incidents needs far more than a quiet one. p-values are corrected for
the number of ordered pairs tested (Benjamini-Hochberg, false discovery rate ``alpha``), and
an edge needs ``min_support`` such incidents. Two services that merely share a dependency
are not suggested: neither leads the other's incidents. An edge's direction is the order
its two services usually fire in (the callee first). Of the significant edges, the one that
would explain the most unexplained co-occurrences of pairs that share more incidents than
chance is accepted first (a missing a -> b also leaves a's callers co-alerting with b; the one
edge explains them all, an edge between one of those callers and b only that pair), then the
evidence is counted again with it in the graph.

**Possibly stale edges.** An edge caller -> callee whose two services alerted in ``n_a`` and
``n_b`` incidents but never in the same one; its confidence is one minus the chance of that
if the two alerted independently (a real dependency should share at least as much as
chance).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations

import networkx as nx

from pipeline.domain.insights.facts import IncidentFacts
from pipeline.domain.insights.stats import bh_qvalues, cooccurrence_p, never_together_p

Pair = tuple[str, str]
_EXAMPLES = 5
_MAX_STALE = 50


@dataclass(frozen=True)
class Basket:
    """The alerting services of one incident (first firing time of each) and its cause."""

    incident_id: str
    first_fire: dict[str, float]
    cause: str | None

    def leaders(self) -> list[str]:
        """The service(s) that fired first."""
        if not self.first_fire:
            return []
        t0 = min(self.first_fire.values())
        return sorted(s for s, t in self.first_fire.items() if t == t0)


def basket_of(inc: IncidentFacts, max_services: int) -> Basket:
    firsts = sorted(inc.first_fire.items(), key=lambda kv: (kv[1], kv[0]))[:max_services]
    return Basket(inc.id, dict(firsts), inc.cause)


@dataclass(frozen=True)
class EdgeSuggestion:
    caller: str
    callee: str
    #: the evidence: in the ``leader_led`` incidents ``leader`` fired first, ``follower``
    #: (alerting in ``follower_incidents`` of the ``incidents`` not led by a service the
    #: graph links with it) alerted ``led_together`` times
    #: with nothing in the graph explaining it; ``expected`` of those by chance, ``lift`` the
    #: ratio. The direction (caller -> callee) is the order the two usually fire in, which
    #: is usually follower -> leader
    leader: str
    follower: str
    led_together: int
    leader_led: int
    follower_incidents: int
    incidents: int
    expected: float
    lift: float
    p_value: float
    q_value: float
    confidence: float
    #: unexplained shared incidents in either order
    together: int
    examples: list[str]


@dataclass(frozen=True)
class StaleEdge:
    caller: str
    callee: str
    caller_incidents: int
    callee_incidents: int
    incidents: int
    confidence: float
    likely_stale: bool


class _Reach:
    """Descendants of every service in a graph that grows by suggested edges."""

    def __init__(self, graph: nx.DiGraph) -> None:
        self.graph = graph.copy()
        self._desc: dict[str, frozenset[str]] = {}

    def add(self, caller: str, callee: str) -> None:
        self.graph.add_edge(caller, callee)
        self._desc.clear()

    def with_edge(self, caller: str, callee: str) -> _Reach:
        trial = _Reach(self.graph)
        trial.add(caller, callee)
        return trial

    def upstream(self, service: str) -> set[str]:
        """``service`` and everything that reaches it."""
        if service not in self.graph:
            return {service}
        return {service, *nx.ancestors(self.graph, service)}

    def desc(self, service: str) -> frozenset[str]:
        d = self._desc.get(service)
        if d is None:
            g = self.graph
            d = frozenset(nx.descendants(g, service)) if service in g else frozenset()
            self._desc[service] = d
        return d

    def linked(self, a: str, b: str) -> bool:
        return b in self.desc(a) or a in self.desc(b)

    def explained(self, a: str, b: str, basket: Basket) -> bool:
        if self.linked(a, b):
            return True
        first = basket.first_fire
        lead = min(first[a], first[b])
        da, db = self.desc(a), self.desc(b)
        causes = list(first.items())
        if basket.cause is not None and basket.cause not in first:
            causes.append((basket.cause, float("-inf")))  # silent root cause
        for c, at in causes:
            if c in (a, b) or at > lead:
                continue
            if c in da and c in db:
                return True
            dc = self.desc(c)
            if a in dc and b in dc:
                return True
        return False


def _presence(baskets: list[Basket]) -> Counter[str]:
    n: Counter[str] = Counter()
    for b in baskets:
        n.update(b.first_fire.keys())
    return n


@dataclass
class _Evidence:
    """Unexplained co-occurrences under the current graph."""

    #: (caller, callee): incidents callee led in which caller alerted, unexplained
    led: Counter[Pair]
    #: sorted pair: unexplained shared incidents
    together: Counter[Pair]
    examples: dict[Pair, list[str]]
    #: per basket index, its unexplained pairs
    open_pairs: dict[int, list[Pair]]
    #: (fired earlier, fired later): unexplained shared incidents in that order
    order: Counter[Pair]


def _evidence(baskets: list[Basket], reach: _Reach) -> _Evidence:
    ev = _Evidence(Counter(), Counter(), {}, {}, Counter())
    for i, basket in enumerate(baskets):
        leaders = basket.leaders()
        for a, b in combinations(sorted(basket.first_fire), 2):
            if reach.explained(a, b, basket):
                continue
            ev.together[(a, b)] += 1
            ev.open_pairs.setdefault(i, []).append((a, b))
            ta, tb = basket.first_fire[a], basket.first_fire[b]
            if ta != tb:
                ev.order[(a, b) if ta < tb else (b, a)] += 1
            if b in leaders:
                ev.led[(a, b)] += 1
                ex = ev.examples.setdefault((a, b), [])
                if len(ex) < _EXAMPLES:
                    ex.append(basket.incident_id)
            if a in leaders:
                ev.led[(b, a)] += 1
                ex = ev.examples.setdefault((b, a), [])
                if len(ex) < _EXAMPLES:
                    ex.append(basket.incident_id)
    return ev


def _orientations(ev: _Evidence, a: str, b: str) -> list[Pair]:
    """(caller, callee) for two services found to depend: the callee is the one that fired
    first in most of their unexplained shared incidents (a failure shows in the failing
    service before its callers); both ways when the order is even."""
    a_first, b_first = ev.order[(a, b)], ev.order[(b, a)]
    if a_first > b_first:
        return [(b, a)]
    if b_first > a_first:
        return [(a, b)]
    return [(a, b), (b, a)]


def _gain(
    baskets: list[Basket],
    ev: _Evidence,
    reach: _Reach,
    caller: str,
    callee: str,
    wanted: set[Pair],
) -> int:
    """Unexplained co-occurrences of the ``wanted`` pairs that the edge caller -> callee would
    explain."""
    trial = reach.with_edge(caller, callee)
    touched = trial.upstream(caller)
    gain = 0
    for i, pairs in ev.open_pairs.items():
        basket = baskets[i]
        if touched.isdisjoint(basket.first_fire):
            continue
        gain += sum(1 for a, b in pairs if (a, b) in wanted and trial.explained(a, b, basket))
    return gain


def _baselines(
    baskets: list[Basket], reach: _Reach, followers: set[str]
) -> dict[str, tuple[int, int]]:
    """Per follower ``a``: the incidents not led by a service the graph links with ``a``, and
    how many of them ``a`` alerted in: its rate of showing up where no known dependency
    explains it, the null of the test. Its alerts in incidents led by services it depends on
    or that depend on it are left out: counted in (as the whole-history rate did), they made
    a real missing dependency look like chance. Its own incidents stay in: leaving them out
    makes a service that alerts at random times look tied to every other."""
    out = {}
    for a in followers:
        population = present = 0
        for b in baskets:
            leaders = b.leaders()
            if any(reach.linked(a, ld) for ld in leaders):
                continue
            population += 1
            present += a in b.first_fire
        out[a] = (population, present)
    return out


def suggest_edges(
    baskets: list[Basket],
    graph: nx.DiGraph,
    *,
    alpha: float,
    min_support: int,
    max_suggestions: int,
) -> list[EdgeSuggestion]:
    """Missing edges the incidents point at, in the order they were accepted."""
    total = len(baskets)
    presence = _presence(baskets)
    led_by: Counter[str] = Counter()
    for b in baskets:
        led_by.update(b.leaders())
    reach = _Reach(graph)
    # every ordered pair with no path either way, where the callee led some incident
    tests = sum(
        1
        for a, b in combinations(sorted(presence), 2)
        if not reach.linked(a, b)
        for callee in (a, b)
        if led_by[callee]
    )
    pair_tests = sum(1 for a, b in combinations(sorted(presence), 2) if not reach.linked(a, b))
    out: list[EdgeSuggestion] = []
    while len(out) < max_suggestions:
        ev = _evidence(baskets, reach)
        edges = [e for e, k in ev.led.items() if k >= min_support]
        base = _baselines(baskets, reach, {e[0] for e in edges})
        ps = [cooccurrence_p(ev.led[e], base[e[0]][0], base[e[0]][1], led_by[e[1]]) for e in edges]
        qs = bh_qvalues(ps, tests)
        # the pairs that need explaining: sharing more incidents than chance
        shared = [p for p, k in ev.together.items() if k >= min_support]
        shared_ps = [
            cooccurrence_p(ev.together[p], total, presence[p[0]], presence[p[1]]) for p in shared
        ]
        wanted = {
            p for p, q in zip(shared, bh_qvalues(shared_ps, pair_tests), strict=True) if q <= alpha
        }
        best: tuple[tuple[int, float, int], int, str, str] | None = None
        for i, (follower, leader) in enumerate(edges):
            if qs[i] > alpha:
                continue
            for caller, callee in _orientations(ev, follower, leader):
                key = (
                    _gain(baskets, ev, reach, caller, callee, wanted),
                    -ps[i],
                    ev.led[edges[i]],
                )
                if best is None or key > best[0]:
                    best = (key, i, caller, callee)
        if best is None:
            break
        _, i, caller, callee = best
        follower, leader = edges[i]
        out.append(
            EdgeSuggestion(
                caller=caller,
                callee=callee,
                leader=leader,
                follower=follower,
                led_together=ev.led[edges[i]],
                leader_led=led_by[leader],
                follower_incidents=base[follower][1],
                incidents=base[follower][0],
                expected=(expected := base[follower][1] * led_by[leader] / base[follower][0]),
                lift=ev.led[edges[i]] / expected if expected else float("inf"),
                p_value=ps[i],
                q_value=qs[i],
                confidence=1.0 - qs[i],
                together=ev.together[(min(caller, callee), max(caller, callee))],
                examples=ev.examples.get(edges[i], []),
            )
        )
        reach.add(caller, callee)
    return out


def stale_edges(baskets: list[Basket], graph: nx.DiGraph, *, alpha: float) -> list[StaleEdge]:
    """Edges whose services both alerted but never in one incident, most confident first."""
    total = len(baskets)
    presence = _presence(baskets)
    shared: Counter[Pair] = Counter()
    for basket in baskets:
        services = sorted(s for s in basket.first_fire if s in graph)
        for a, b in combinations(services, 2):
            if graph.has_edge(a, b) or graph.has_edge(b, a):
                shared[(a, b)] += 1
    out = []
    for caller, callee in graph.edges:
        na, nb = presence[caller], presence[callee]
        if not na or not nb or shared[(min(caller, callee), max(caller, callee))]:
            continue
        conf = 1.0 - never_together_p(total, na, nb)
        out.append(StaleEdge(caller, callee, na, nb, total, conf, conf >= 1 - alpha))
    out.sort(key=lambda e: (-e.confidence, e.caller, e.callee))
    return out[:_MAX_STALE]
