"""The generalization benchmark: root causes and grouping on systems the correlator was not
developed on, behind incomplete topologies (part of ``make bench-correlation``).

For every topology (DeathStarBench media and social network, Online Boutique, a generated
layered graph), storms of faults of every kind (:func:`benchmarks.faults.fault_storm`,
``--seeds`` of them, each kind of :data:`benchmarks.faults.FAULT_KINDS` scored on its own
faults and ``all`` on every fault) are replayed through the
pipeline given the topology with 0, 15 and 30 % of its edges removed
(:func:`benchmarks.faults.incomplete`), and once more given it with 40 % of its services
listed without any edge (:func:`benchmarks.faults.edgeless`: a topology read from traces,
whose services that emit no spans have no edges, and no call metric names them, as on a
held-out system with no edges for 18 of its 46 services), and scored with
:mod:`benchmarks.rca_score` next to the baselines of :mod:`benchmarks.baselines` (given the
same incomplete topology). The headline ``generalization_min_ratio`` is the smallest, over
topologies, of AC@1 with 30 % of edges removed over AC@1 on the full topology (AC@1 pooled
over fault kinds); ``edgeless_min_ratio`` the same for the edgeless condition.

A second set of storms adds the variant kinds (:data:`benchmarks.faults.VARIANT_KINDS`: a
*quiet* code defect, as a held-out system showed them: the faulty service silent, no error
alert anywhere, only its callers' latency and load moving), stormwatch only, at 0 and 30 %
of edges removed and edgeless (``variants`` in the JSON).

Usage: ``python -m benchmarks.generalization [--faults N] [--seeds S] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import ROOT, baselines
from benchmarks.faults import (
    FAULT_KINDS,
    VARIANT_KINDS,
    edgeless,
    fault_storm,
    incomplete,
    truth_of_kind,
    without_dark_calls,
)
from benchmarks.rca_score import RcaScore, score
from benchmarks.synthetic import layered_graph
from pipeline.domain.schemas import Alert
from pipeline.domain.topology import Topology
from pipeline.offline.replay import replay_alerts

REMOVED = (0.0, 0.15, 0.30)
#: share of services listed without edges (and unnamed by call labels) in the edgeless condition
EDGELESS = 0.40
#: the conditions a topology is given in: a share of edges removed, or "edgeless"
CONDITIONS: tuple[float | str, ...] = (*REMOVED, "edgeless")
METHODS = ("stormwatch", "windows+earliest", "windows+downstream", "alertmanager")
#: the conditions the variant kinds' storms are given in
VARIANT_CONDITIONS: tuple[float | str, ...] = (0.0, REMOVED[-1], "edgeless")


def topologies() -> list[Topology]:
    """The real topologies of ``topologies/`` and one generated graph (40 services)."""
    out = [
        Topology.load(ROOT / "topologies" / f)
        for f in (
            "deathstarbench-media.yaml",
            "deathstarbench-social-network.yaml",
            "online-boutique.yaml",
        )
    ]
    g = layered_graph(40, seed=3)
    out.append(Topology(name="generated-40", graph=g.graph))
    return out


Method = Callable[[Topology, Sequence[Alert]], list[dict[str, Any]]]


def _stormwatch(topo: Topology, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for inc in replay_alerts(topo, alerts):
        out.append(
            {
                "id": inc.id,
                "opened_at": inc.opened_at,
                "alert_ids": inc.alert_ids,
                "root_cause": inc.root_cause,
                "root_cause_candidates": [
                    {"service": c.service, "score": c.score} for c in inc.root_cause_candidates
                ],
            }
        )
    out.sort(key=lambda d: (d["opened_at"], d["id"]))
    return out


_METHODS: dict[str, Method] = {
    "stormwatch": _stormwatch,
    "windows+earliest": lambda t, a: baselines.time_windows(a, t, rank="earliest"),
    "windows+downstream": lambda t, a: baselines.time_windows(a, t, rank="downstream"),
    "alertmanager": lambda t, a: baselines.alertmanager_group_by_service(a),
}


def _pool(scores: Sequence[RcaScore]) -> dict[str, float]:
    """Fault-weighted means of AC@1, AC@3, pair F1 and noise over several storms."""
    n = sum(s.faults for s in scores) or 1
    return {
        "ac1": sum(s.ac1 * s.faults for s in scores) / n,
        "ac3": sum(s.ac3 * s.faults for s in scores) / n,
        "pair_f1": sum(s.pair_f1 for s in scores) / max(1, len(scores)),
        "noise": sum(s.noise for s in scores) / max(1, len(scores)),
        "faults": float(n),
    }


def run(faults: int = 45, seeds: int = 4) -> dict[str, Any]:
    """Every cell (topology x fault kind x removed share x method), pooled over ``seeds``
    storms of ``faults`` faults of all kinds interleaved (a method sees the whole storm; each
    kind is scored on its own faults)."""
    cells: list[dict[str, Any]] = []
    per_topology: dict[str, dict[str, Any]] = {}
    everywhere: dict[tuple[float | str, str], list[RcaScore]] = {}  # (condition, kind)
    for topo in topologies():
        scores: dict[tuple[float | str, str, str], list[RcaScore]] = {}
        for seed in range(1, seeds + 1):
            st = fault_storm(topo, FAULT_KINDS, faults=faults, seed=seed)
            for cond in CONDITIONS:
                given, alerts = given_as(topo, cond, st.alerts, seed)
                for m in METHODS:
                    incs = _METHODS[m](given, alerts)
                    scores.setdefault((cond, m, "all"), []).append(score(st.truth, incs))
                    for kind in FAULT_KINDS:
                        s = score(truth_of_kind(st, kind), incs)
                        scores.setdefault((cond, m, kind), []).append(s)
                        if m == "stormwatch":
                            everywhere.setdefault((cond, kind), []).append(s)
        for kind in (*FAULT_KINDS, "all"):
            for cond in CONDITIONS:
                cells.append(
                    {
                        "topology": topo.name,
                        "kind": kind,
                        "removed": cond,
                        **{m: _pool(scores[(cond, m, kind)]) for m in METHODS},
                    }
                )
        ac1 = {c: _pool(scores[(c, "stormwatch", "all")])["ac1"] for c in CONDITIONS}
        f1 = {c: _pool(scores[(c, "stormwatch", "all")])["pair_f1"] for c in CONDITIONS}
        per_topology[topo.name] = {
            "services": topo.graph.number_of_nodes(),
            "edges": topo.graph.number_of_edges(),
            **{f"ac1_{_key(c)}": ac1[c] for c in CONDITIONS},
            **{f"pair_f1_{_key(c)}": f1[c] for c in CONDITIONS},
            "ratio": ac1[REMOVED[-1]] / ac1[0.0] if ac1[0.0] else 0.0,
            "edgeless_ratio": ac1["edgeless"] / ac1[0.0] if ac1[0.0] else 0.0,
        }
    return {
        "faults_per_storm": faults,
        "seeds": seeds,
        "variants": run_variants(faults, seeds),
        "cells": cells,
        "per_topology": per_topology,
        "generalization_min_ratio": min(t["ratio"] for t in per_topology.values()),
        "edgeless_min_ratio": min(t["edgeless_ratio"] for t in per_topology.values()),
        # stormwatch per fault kind, pooled over every topology's storms
        "pooled": [
            {"kind": kind, "removed": cond, **_pool(everywhere[(cond, kind)])}
            for kind in FAULT_KINDS
            for cond in CONDITIONS
        ],
    }


def run_variants(faults: int, seeds: int) -> list[dict[str, Any]]:
    """stormwatch on storms of every kind and the variant kinds interleaved (a third more
    faults, so each kind keeps as many), per variant kind and condition: per topology and
    pooled over them."""
    kinds = (*FAULT_KINDS, *VARIANT_KINDS)
    n = faults * len(kinds) // len(FAULT_KINDS)
    scores: dict[tuple[str, float | str, str], list[RcaScore]] = {}
    for topo in topologies():
        for seed in range(1, seeds + 1):
            st = fault_storm(topo, kinds, faults=n, seed=seed)
            for cond in VARIANT_CONDITIONS:
                given, alerts = given_as(topo, cond, st.alerts, seed)
                incs = _stormwatch(given, alerts)
                for kind in VARIANT_KINDS:
                    scores.setdefault((topo.name, cond, kind), []).append(
                        score(truth_of_kind(st, kind), incs)
                    )
    names = [t.name for t in topologies()]
    return [
        {
            "topology": name,
            "kind": kind,
            "removed": cond,
            **_pool(
                [
                    s
                    for t in (names if name == "pooled" else [name])
                    for s in scores[(t, cond, kind)]
                ]
            ),
        }
        for kind in VARIANT_KINDS
        for name in (*names, "pooled")
        for cond in VARIANT_CONDITIONS
    ]


def _key(cond: float | str) -> str:
    """JSON key part of a condition: ``removed_30`` or ``edgeless_40``."""
    if isinstance(cond, str):
        return f"{cond}_{round(EDGELESS * 100)}"
    return f"removed_{round(cond * 100)}"


def condition_label(cond: float | str) -> str:
    """How tables name a condition: ``30%`` or ``40% edgeless``."""
    return f"{round(EDGELESS * 100)}% edgeless" if isinstance(cond, str) else f"{cond:.0%}"


def given_as(
    topo: Topology, cond: float | str, alerts: Sequence[Alert], seed: int
) -> tuple[Topology, Sequence[Alert]]:
    """The topology and alerts a method is given under condition ``cond``: a share of
    edges removed (:func:`incomplete`), or ``"edgeless"`` (:data:`EDGELESS` of the services
    listed without edges, and no call label naming them: :func:`edgeless`,
    :func:`without_dark_calls`)."""
    if isinstance(cond, str):
        given = edgeless(topo, EDGELESS, seed=seed)
        return given, without_dark_calls(alerts, given)
    return incomplete(topo, cond, seed=seed), alerts


def print_tables(console: Console, result: dict[str, Any]) -> None:
    t = Table(
        title=f"Generalization: {result['seeds']} storms of {result['faults_per_storm']} faults per"
        " topology, topology given with a share of edges removed (stormwatch | baselines AC@1 / F1)"
    )
    for c in ("topology", "fault kind", "removed", "AC@1", "AC@3", "pair F1", "noise"):
        t.add_column(c, justify="left" if c in ("topology", "fault kind") else "right")
    for m in METHODS[1:]:
        t.add_column(m, justify="right")
    for cell in result["cells"]:
        sw = cell["stormwatch"]
        t.add_row(
            cell["topology"],
            cell["kind"],
            condition_label(cell["removed"]),
            f"{sw['ac1']:.2f}",
            f"{sw['ac3']:.2f}",
            f"{sw['pair_f1']:.2f}",
            f"{sw['noise']:.2f}",
            *(f"{cell[m]['ac1']:.2f} / {cell[m]['pair_f1']:.2f}" for m in METHODS[1:]),
        )
    console.print(t)
    s = Table(title="Generalization per topology (stormwatch, AC@1 pooled over fault kinds)")
    el = f"{round(EDGELESS * 100)}% edgeless"
    for c in ("topology", "services", "edges", "AC@1 0%", "AC@1 15%", "AC@1 30%", "30%/0%"):
        s.add_column(c, justify="left" if c == "topology" else "right")
    s.add_column(f"AC@1 {el}", justify="right")
    s.add_column("pair F1 0% / 30% / edgeless", justify="right")
    ek = _key("edgeless")
    for name, p in result["per_topology"].items():
        s.add_row(
            name,
            str(p["services"]),
            str(p["edges"]),
            f"{p['ac1_removed_0']:.2f}",
            f"{p['ac1_removed_15']:.2f}",
            f"{p['ac1_removed_30']:.2f}",
            f"{p['ratio']:.2f}",
            f"{p[f'ac1_{ek}']:.2f}",
            f"{p['pair_f1_removed_0']:.2f} / {p['pair_f1_removed_30']:.2f} / "
            f"{p[f'pair_f1_{ek}']:.2f}",
        )
    console.print(s)
    k = Table(title="stormwatch per fault kind, pooled over the topologies (AC@1 / AC@3)")
    k.add_column("fault kind")
    for cond in CONDITIONS:
        k.add_column(condition_label(cond), justify="right")
    for kind in FAULT_KINDS:
        row = {c["removed"]: c for c in result["pooled"] if c["kind"] == kind}
        k.add_row(kind, *(f"{row[c]['ac1']:.2f} / {row[c]['ac3']:.2f}" for c in CONDITIONS))
    console.print(k)
    v = Table(
        title="Variant kinds on storms of their own (stormwatch, AC@1 / AC@3): a quiet code "
        "defect shows only as its callers' latency and load"
    )
    v.add_column("kind")
    v.add_column("topology")
    for cond in VARIANT_CONDITIONS:
        v.add_column(condition_label(cond), justify="right")
    for kind in VARIANT_KINDS:
        for name in [*(t for t in result["per_topology"]), "pooled"]:
            row = {
                c["removed"]: c
                for c in result["variants"]
                if c["kind"] == kind and c["topology"] == name
            }
            v.add_row(
                kind,
                name,
                *(f"{row[c]['ac1']:.2f} / {row[c]['ac3']:.2f}" for c in VARIANT_CONDITIONS),
            )
    console.print(v)
    console.print(
        f"generalization_min_ratio={result['generalization_min_ratio']:.2f} "
        f"edgeless_min_ratio={result['edgeless_min_ratio']:.2f}",
        highlight=False,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.generalization",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("--faults", type=int, default=45, help="faults per storm (default 45)")
    p.add_argument("--seeds", type=int, default=4, help="storms per cell (default 4)")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = p.parse_args(argv)
    if args.faults < 1 or args.seeds < 1:
        p.error("--faults and --seeds must be at least 1")
    result = run(args.faults, args.seeds)
    print_tables(Console(width=160), result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
