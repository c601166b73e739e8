"""How high can AC@1 go on rca-dev from alert evidence alone? An upper bound for any ranker.

A root-cause ranker that sees only alerts (and the fixed topology) is a function of the
evidence it is given. Faults whose evidence is identical get the same answer, so within a
group of faults with the same evidence at most the most common true cause is named first
(AC@3: the three most common). Summing that over the groups is the best AC@1 (AC@3) **any**
deterministic function of that evidence can reach on this set: a bound, reached only by a
lookup table fitted to this very set.

The bound depends on what "the evidence" is, so it is computed under several definitions,
coarse to fine (:data:`DEFINITIONS`): which services alerted; (service, alert kind) pairs;
(service, alert name) pairs; plus which of them alerted first; the whole onset order; the
order with the calls the alerts name (``caller->callee``) and their severities. The finer
the definition, the more faults have evidence no other fault shares, and the closer the
bound gets to the share of faults with alerts (51/56): the bound then says nothing about
what a method can learn. A second figure shows that: **leave-one-out**, each fault named by
the most common cause among the *other* faults with the same evidence (a lookup learned
from the rest; evidence seen once names nothing). Where the bound is high only because
groups are singletons, leave-one-out falls.

**Name-free bounds** (``role`` rows). A method meant for any system cannot use service
names: what it can use is, per candidate service, how each alerting service relates to it in
the topology (self, caller or dependency and at how many hops, unrelated), the alert kinds
and their onset order. Under that evidence each fault is a choice among candidates (every
service of the topology and every alerting one), each described by its *role profile*. A
fault whose true cause has the same profile as another candidate is a coin toss for any
name-free ranker (counted as 1/k for k equal profiles); and when one fault needs profile u
ranked above v while another needs v above u, no ranking gets both (at least one of each
such pair, counted over disjoint pairs, is lost). Both counts are subtracted: an upper
bound that no name-free ranking can beat on this set.

The onset order at full resolution also orders alerts of one evaluation: rca-dev's alert
times sit on a 60-s evaluation grid with 1-s jitter, so a second row counts onsets at most
:data:`ONE_EVALUATION_S` apart as one (the order a method can read as propagation).

Two groupings: ``fault`` (the alerts the truth gives the fault: its window, perfect
grouping) and ``incident`` (the alerts of the stormwatch incident that holds most of the
fault's alerts, the evidence the ranker really had; faults sharing an incident share it).

``--generalization``: the same name-free bound on the generalization benchmark's storms
(:mod:`benchmarks.generalization`), per fault kind and condition (a share of edges removed,
or services listed without edges), pooled over its topologies: the fault's own alerts
(perfect grouping), the topology as given plus the calls the alerts name. Per kind, only
conflicts among faults of that kind are counted (a looser bound than over all faults).

Usage: ``python -m benchmarks.rca_bound [--generalization] [--json OUT]`` (~10 s; replays
rca-dev once; ``--generalization`` ~20 s more).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pipeline.domain.call_edges import call_edge
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.rootcause import KindClassifier
from pipeline.domain.schemas import Alert, AlertStatus
from pipeline.domain.topology import Topology

Evidence = Callable[[Sequence[Alert]], Hashable]

#: rca-dev's alerts come from 60-s evaluations: their times sit on a 60-s grid with 1-s
#: jitter (of the gaps between distinct alert times under 120 s: 29 of 1 s, 87 of 59-61 s).
#: Onsets closer than half an evaluation are one evaluation, their order is jitter.
ONE_EVALUATION_S = 30.0

_kind = KindClassifier()


def _call(a: Alert) -> str:
    metric = a.labels.get("metric", "")
    return metric.rsplit(":", 1)[-1] if "->" in metric else ""


def _onsets(alerts: Sequence[Alert]) -> list[tuple[float, str, str, str, str]]:
    """(first firing time, service, name, call, severity) per distinct alert, by time."""
    first: dict[tuple[str, str, str, str], float] = {}
    for a in alerts:
        key = (a.service, a.name, _call(a), a.severity.value)
        if key not in first or a.epoch < first[key]:
            first[key] = a.epoch
    return sorted((t, *k) for k, t in first.items())


def _order(alerts: Sequence[Alert], width: int) -> Hashable:
    """The onset order of the first ``width`` fields of (service, name, call, severity):
    a tuple of sets, one per distinct onset time (alerts of one evaluation are unordered)."""
    by_time: dict[float, set[tuple[str, ...]]] = defaultdict(set)
    for t, *rest in _onsets(alerts):
        by_time[t].add(tuple(rest[:width]))
    out: list[frozenset[tuple[str, ...]]] = []
    seen: set[tuple[str, ...]] = set()
    for t in sorted(by_time):
        new = frozenset(by_time[t] - seen)
        seen |= new
        if new:
            out.append(new)
    return tuple(out)


def _first(alerts: Sequence[Alert]) -> Hashable:
    onsets = _onsets(alerts)
    t0 = onsets[0][0] if onsets else 0.0
    return (
        frozenset((a.service, a.name) for a in alerts),
        frozenset((s, n) for t, s, n, _, _ in onsets if t == t0),
    )


#: evidence definitions, coarse to fine (name -> function of a fault's firing alerts)
DEFINITIONS: dict[str, tuple[str, Evidence]] = {
    "services": ("which services alerted", lambda al: frozenset(a.service for a in al)),
    "service kinds": (
        "(service, alert kind) pairs",
        lambda al: frozenset((a.service, _kind(a.name, a.labels)) for a in al),
    ),
    "service alerts": (
        "(service, alert name) pairs",
        lambda al: frozenset((a.service, a.name) for a in al),
    ),
    "+ first": ("(service, alert name) pairs and which alerted first", _first),
    "onset order": (
        "(service, alert name) in onset order (ties: same evaluation)",
        lambda al: _order(al, 2),
    ),
    "order + calls": (
        "onset order with the call each alert names (caller->callee)",
        lambda al: _order(al, 3),
    ),
    "order + calls + severity": (
        "onset order, calls and severities",
        lambda al: _order(al, 4),
    ),
}


def _top(causes: Counter[str], k: int) -> list[str]:
    return [c for c, _ in sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def bound(evidence: Mapping[str, Hashable | None], cause: Mapping[str, str]) -> dict[str, float]:
    """Best AC@1/AC@3 of any function of ``evidence`` (fault id -> its evidence, ``None``
    for a fault with no alert: always a miss), and the same answered leave-one-out."""
    groups: dict[Hashable, Counter[str]] = defaultdict(Counter)
    for fid, ev in evidence.items():
        if ev is not None:
            groups[ev][cause[fid]] += 1
    n = len(evidence) or 1
    best1 = sum(max(c.values()) for c in groups.values())
    best3 = sum(sum(sorted(c.values(), reverse=True)[:3]) for c in groups.values())
    loo1 = loo3 = 0
    for fid, ev in evidence.items():
        if ev is None:
            continue
        rest = groups[ev].copy()
        rest[cause[fid]] -= 1
        rest = +rest  # drop the zero counts
        if not rest:
            continue
        top = _top(rest, 3)
        loo1 += cause[fid] == top[0]
        loo3 += cause[fid] in top
    return {
        "ac1_bound": best1 / n,
        "ac3_bound": best3 / n,
        "ac1_loo": loo1 / n,
        "ac3_loo": loo3 / n,
        "classes": float(len(groups)),
        "shared": float(sum(1 for c in groups.values() if sum(c.values()) > 1)),
        "conflicting": float(sum(1 for c in groups.values() if len(c) > 1)),
    }


Profile = tuple[frozenset[tuple[str, int, str, int]], tuple[int, int]]


def _profiles(
    alerts: Sequence[Alert],
    graph: GraphIndex,
    nodes: Sequence[str],
    timed: bool,
    degree: bool,
    merge_s: float = 0.0,
) -> dict[str, Profile]:
    """Per candidate (every service of the graph and every alerting one), its role profile:
    (relation, hops, kind, onset rank) of every alerting service's alerts, the onset rank (the
    service's first alert, dense rank) only if ``timed``; with ``degree``, also the
    candidate's numbers of direct callers and dependencies in the topology. Onsets at most
    ``merge_s`` after the previous distinct onset share its rank (one evaluation)."""
    first: dict[str, float] = {}
    kinds: dict[str, set[str]] = defaultdict(set)
    for a in alerts:
        kinds[a.service].add(_kind(a.name, a.labels))
        first[a.service] = min(first.get(a.service, a.epoch), a.epoch)
    ranks: dict[float, int] = {}
    rank, prev = -1, -math.inf
    for t in sorted(set(first.values())):
        if t - prev > merge_s:
            rank += 1
        ranks[t] = rank
        prev = t
    out: dict[str, Profile] = {}
    for c in sorted(set(nodes) | set(kinds)):
        up, down = graph.up(c), graph.down(c)
        prof: set[tuple[str, int, str, int]] = set()
        for s, ks in kinds.items():
            if s == c:
                rel, h = "self", 0
            elif s in up:
                rel, h = "up", up[s]
            elif s in down:
                rel, h = "down", down[s]
            else:
                rel, h = "none", 0
            for k in ks:
                prof.add((rel, h, k, ranks[first[s]] if timed else 0))
        deg = (len(graph.callers1(c)), len(graph.deps1(c))) if degree else (0, 0)
        out[c] = (frozenset(prof), deg)
    return out


def role_bound(
    per_fault: Mapping[str, Sequence[Alert]],
    cause: Mapping[str, str],
    graph: GraphIndex,
    nodes: Sequence[str],
    timed: bool,
    degree: bool = False,
    merge_s: float = 0.0,
) -> dict[str, Any]:
    """Upper bound of AC@1 for name-free rankers (see the module docstring); also which
    faults tie (``tied_faults``) and the disjoint conflicting pairs (``conflict_pairs``).
    ``merge_s``: onsets closer than this count as one (see :func:`_profiles`)."""
    import networkx as nx

    expected = 0.0
    tied: list[str] = []  # faults whose true cause shares its profile with another candidate
    wants: list[tuple[str, set[Profile], Profile]] = []  # fault, profiles to beat, its own
    for fid, alerts in per_fault.items():
        if not alerts:
            continue
        prof = _profiles(alerts, graph, nodes, timed, degree, merge_s)
        true = prof.get(cause[fid])
        if true is None:
            continue
        same = sum(1 for p in prof.values() if p == true)
        expected += 1.0 / same
        if same > 1:
            tied.append(fid)
        wants.append((fid, {p for c, p in prof.items() if p != true}, true))
    # disjoint pairs of faults that need opposite orders of two profiles: one of each is lost
    # (a maximum matching of the conflict graph: the most disjoint pairs)
    conflicts = nx.Graph()
    for i, (fa, beat_a, ua) in enumerate(wants):
        for fb, beat_b, ub in wants[i + 1 :]:
            if ua != ub and ub in beat_a and ua in beat_b:
                conflicts.add_edge(fa, fb)
    matching = nx.max_weight_matching(conflicts, maxcardinality=True)
    lost = float(len(matching))
    n = len(per_fault) or 1
    return {
        "ac1_bound": max(0.0, expected - lost) / n,
        "ties_only": expected / n,
        "conflicting": lost,
        "tied_faults": sorted(tied),
        "conflict_pairs": sorted(tuple(sorted(p)) for p in matching),
    }


def fault_alerts(
    alerts: Sequence[Alert], truth: Mapping[str, Any], incidents: Sequence[Mapping[str, Any]] | None
) -> dict[str, list[Alert]]:
    """Per fault, the firing alerts it is judged on: its own (``incidents`` None) or those of
    the incident holding most of its alerts (ties: the one listed first)."""
    firing = {a.id: a for a in alerts if a.status is AlertStatus.firing}
    own: dict[str, list[Alert]] = defaultdict(list)
    for aid, fid in truth["alert_fault"].items():
        if fid is not None and aid in firing:
            own[fid].append(firing[aid])
    if incidents is None:
        return {f["fault_id"]: own.get(f["fault_id"], []) for f in truth["faults"]}
    inc_of: dict[str, int] = {}
    for i, inc in enumerate(incidents):
        for aid in inc.get("alert_ids") or []:
            inc_of.setdefault(aid, i)
    out: dict[str, list[Alert]] = {}
    for f in truth["faults"]:
        placed = [inc_of[a.id] for a in own.get(f["fault_id"], []) if a.id in inc_of]
        if not placed:
            out[f["fault_id"]] = []
            continue
        best = max(Counter(placed).items(), key=lambda kv: (kv[1], -kv[0]))[0]
        ids = incidents[best].get("alert_ids") or []
        out[f["fault_id"]] = [firing[a] for a in ids if a in firing]
    return out


def run(
    alerts: Sequence[Alert],
    truth: Mapping[str, Any],
    incidents: Sequence[Mapping[str, Any]],
    topology: Topology,
    hops: int = 2,
) -> dict[str, Any]:
    """The bound and leave-one-out figures per evidence definition and grouping, and the
    name-free (role) bounds with relations within ``hops``."""
    cause = {f["fault_id"]: f["root_cause_service"] for f in truth["faults"]}
    rows: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    graph = GraphIndex(topology, hops)
    nodes = sorted(topology.graph.nodes)
    for a in alerts:  # calls the alerts name, as the correlator learns them
        edge = call_edge(a.service, a.labels)
        if edge is not None:
            graph.add_edge(*edge)
    for grouping, incs in (("fault", None), ("incident", incidents)):
        per_fault = fault_alerts(alerts, truth, incs)
        for name, (what, fn) in DEFINITIONS.items():
            ev = {fid: (fn(al) if al else None) for fid, al in per_fault.items()}
            rows.append({"grouping": grouping, "evidence": name, "what": what, **bound(ev, cause)})
        for name, timed, degree, merge in (
            ("roles", False, False, 0.0),
            ("roles + onset order", True, False, 0.0),
            (
                f"roles + onset order, onsets <= {ONE_EVALUATION_S:.0f} s apart as one",
                True,
                False,
                ONE_EVALUATION_S,
            ),
            ("roles + onset order + degree", True, True, 0.0),
        ):
            roles.append(
                {
                    "grouping": grouping,
                    "evidence": name,
                    **role_bound(per_fault, cause, graph, nodes, timed, degree, merge),
                }
            )
    return {"faults": len(cause), "rows": rows, "roles": roles}


def generalization_bound(seeds: int = 4, faults: int = 45) -> list[dict[str, Any]]:
    """Name-free AC@1 bounds on the generalization storms, per fault kind and condition."""
    from benchmarks.faults import FAULT_KINDS, fault_storm
    from benchmarks.generalization import CONDITIONS, given_as, topologies

    sums: dict[tuple[str, str, float | str], float] = defaultdict(float)
    counts: dict[tuple[str, float | str], int] = defaultdict(int)
    for topo in topologies():
        for seed in range(1, seeds + 1):
            st = fault_storm(topo, FAULT_KINDS, faults=faults, seed=seed)
            cause = {f["fault_id"]: f["root_cause_service"] for f in st.truth["faults"]}
            for cond in CONDITIONS:
                given, alerts = given_as(topo, cond, st.alerts, seed)
                graph = GraphIndex(given, 2)
                for a in alerts:
                    edge = call_edge(a.service, a.labels)
                    if edge is not None:
                        graph.add_edge(*edge)
                firing = {a.id: a for a in alerts if a.status is AlertStatus.firing}
                own: dict[str, list[Alert]] = defaultdict(list)
                for aid, fid in st.truth["alert_fault"].items():
                    if fid is not None:
                        own[fid].append(firing[aid])
                nodes = sorted(given.graph.nodes)
                for kind in (*FAULT_KINDS, "all"):
                    fids = [f for f, k in st.kinds.items() if kind in ("all", k)]
                    per = {f: own.get(f, []) for f in fids}
                    counts[(kind, cond)] += len(fids)
                    for name, timed in (("roles", False), ("roles + onset order", True)):
                        r = role_bound(per, cause, graph, nodes, timed)
                        sums[(kind, name, cond)] += r["ac1_bound"] * len(fids)
    return [
        {
            "kind": kind,
            "evidence": name,
            "removed": cond,
            "ac1_bound": sums[(kind, name, cond)] / max(1, counts[(kind, cond)]),
        }
        for kind in (*FAULT_KINDS, "all")
        for name in ("roles", "roles + onset order")
        for cond in CONDITIONS
    ]


def print_table(console: Console, result: dict[str, Any]) -> None:
    t = Table(
        title=f"rca-dev: best AC@1/AC@3 any function of the alert evidence can reach "
        f"({result['faults']} faults); leave-one-out: a lookup learned from the other faults"
    )
    for c in ("grouping", "evidence", "classes", "shared", "conflicting"):
        t.add_column(c, justify="left" if c in ("grouping", "evidence") else "right")
    for c in ("AC@1 bound", "AC@3 bound", "AC@1 LOO", "AC@3 LOO"):
        t.add_column(c, justify="right")
    for r in result["rows"]:
        t.add_row(
            r["grouping"],
            r["evidence"],
            f"{r['classes']:.0f}",
            f"{r['shared']:.0f}",
            f"{r['conflicting']:.0f}",
            f"{r['ac1_bound']:.2f}",
            f"{r['ac3_bound']:.2f}",
            f"{r['ac1_loo']:.2f}",
            f"{r['ac3_loo']:.2f}",
        )
    console.print(t)
    r = Table(
        title="rca-dev: best AC@1 a name-free ranker can reach (role profiles of the candidates "
        "in the topology; ties count 1/k, opposite orders needed by two faults lose one)"
    )
    for c in ("grouping", "evidence", "AC@1 ties only", "conflicting pairs", "AC@1 bound"):
        r.add_column(c, justify="left" if c in ("grouping", "evidence") else "right")
    for row in result["roles"]:
        r.add_row(
            row["grouping"],
            row["evidence"],
            f"{row['ties_only']:.2f}",
            f"{row['conflicting']:.0f}",
            f"{row['ac1_bound']:.2f}",
        )
    console.print(r)
    gen = result.get("generalization")
    if gen:
        from benchmarks.generalization import CONDITIONS, condition_label

        g = Table(
            title="Generalization storms: best AC@1 a name-free ranker can reach, per fault kind "
            "(fault's own alerts; pooled over the topologies)"
        )
        g.add_column("fault kind")
        g.add_column("evidence")
        for cond in CONDITIONS:
            g.add_column(condition_label(cond), justify="right")
        by = {(x["kind"], x["evidence"], x["removed"]): x["ac1_bound"] for x in gen}
        for kind in dict.fromkeys(x["kind"] for x in gen):
            for ev in dict.fromkeys(x["evidence"] for x in gen):
                g.add_row(kind, ev, *(f"{by[(kind, ev, c)]:.2f}" for c in CONDITIONS))
        console.print(g)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.correlation import load_rca, stormwatch_incidents

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.rca_bound",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    p.add_argument(
        "--generalization",
        action="store_true",
        help="also bound the generalization benchmark's storms per fault kind and condition",
    )
    args = p.parse_args(argv)
    topo, alerts, truth = load_rca()
    incidents, _ = stormwatch_incidents(topo, alerts)
    result = run(alerts, truth, incidents, topo)
    if args.generalization:
        result["generalization"] = generalization_bound()
    print_table(Console(width=160), result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
