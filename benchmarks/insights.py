"""``make bench-insights``: are the insights right?

* **Noisy rules on rca-dev.** The real Online Boutique alert storm is replayed with its
  topology and fed, without any feedback, to :class:`Insights`. The rules it calls noisy
  (ranked, at most ``--top``) are checked against the truth: a rule is background when most
  of its firing alerts fall outside every fault window (the truth labels alerts by time only,
  so a background alert that happens to fire inside a window counts as the fault's; the
  stricter "every firing alert is background" is printed too). ``noisy_rule_precision`` =
  flagged background rules / flagged rules.
* **Missing edges on synthetic storms.** For each DeathStarBench topology and seed, ``--k``
  edges are removed from the topology (only edges whose removal leaves no path between their
  services, :func:`benchmarks.synthetic.remove_edges`); a storm of ``--events`` alert events,
  one fault every ``--fault-every-s`` seconds, is generated over the *true* topology
  (:func:`benchmarks.synthetic.storm`: faults, symptoms on callers up to 3 hops, traffic drops
  on dependencies, random noise) and replayed with the *reduced* one; the suggested missing
  edges are compared with the removed ones, ignoring direction (how many also have the right
  direction is printed). ``edge_precision`` and ``edge_recall`` are pooled over all runs.

Targets (issue 18): edge precision >= 0.8 at recall >= 0.5; noisy-rule precision >= 0.8.
Nothing in the method is fitted to these sets: the statistics use a 5 % false discovery rate,
three shared incidents at least, and the 95 % Wilson bound.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import ROOT
from benchmarks.correlation import load_rca
from benchmarks.synthetic import remove_edges, storm
from pipeline.domain.insights import Insights
from pipeline.domain.topology import Topology
from pipeline.offline.replay import replay_alerts

TOPOLOGIES = ("deathstarbench-social-network", "deathstarbench-media")


def noisy_rules(top: int) -> dict[str, Any]:
    """Flagged rules on rca-dev and how many are background by the truth."""
    topo, alerts, truth = load_rca()
    incidents = replay_alerts(topo, alerts)
    insights = Insights(team_of=topo.team)
    for inc in incidents:
        insights.observe_incident(inc)
    report = insights.report(topo.graph)
    alert_fault = truth["alert_fault"]
    fired: Counter[tuple[str, str]] = Counter()
    background: Counter[tuple[str, str]] = Counter()
    for a in alerts:
        if a.status.value == "firing":
            fired[(a.service, a.name)] += 1
            background[(a.service, a.name)] += alert_fault.get(a.id) is None
    flagged = [q for q in report.rules if q.noisy][:top]
    rows: list[dict[str, Any]] = []
    for q in flagged:
        rule = (q.service, q.name)
        share = background[rule] / fired[rule] if fired[rule] else 0.0
        rows.append(
            {
                "rule": f"{q.service} / {q.name}",
                "incidents": q.incidents,
                "noise_share": q.noise_share,
                "lower_bound": q.noise_lower_bound,
                "firing": fired[rule],
                "background": background[rule],
                "background_share": share,
            }
        )
    n = len(rows)
    return {
        "incidents": len(incidents),
        "rules": len(report.rules),
        "background_rules": sum(1 for r in fired if background[r] * 2 > fired[r]),
        "flagged": rows,
        "precision": sum(r["background_share"] > 0.5 for r in rows) / n if n else 0.0,
        "precision_strict": sum(r["background_share"] == 1.0 for r in rows) / n if n else 0.0,
    }


def missing_edges(seeds: list[int], k: int, events: int, fault_every_s: float) -> dict[str, Any]:
    """Suggested against removed edges over every topology and seed."""
    runs = []
    tp = fp = fn = right_way = 0
    for name in TOPOLOGIES:
        true = Topology.load(ROOT / "topologies" / f"{name}.yaml")
        for seed in seeds:
            given, removed = remove_edges(true, k, seed=seed)
            alerts = storm(true, events, seed=seed, fault_every_s=fault_every_s)
            t0 = time.perf_counter()
            incidents = replay_alerts(given, alerts)
            insights = Insights(team_of=given.team)
            for inc in incidents:
                insights.observe_incident(inc)
            t1 = time.perf_counter()
            report = insights.report(given.graph)
            t2 = time.perf_counter()
            truth = {frozenset(e) for e in removed}
            got = [(e.caller, e.callee) for e in report.suggested_edges]
            hits = [e for e in got if frozenset(e) in truth]
            tp += len(hits)
            fp += len(got) - len(hits)
            fn += len(truth) - len(hits)
            right_way += sum(1 for e in hits if e in removed)
            runs.append(
                {
                    "topology": name,
                    "seed": seed,
                    "removed": [list(e) for e in removed],
                    "suggested": [list(e) for e in got],
                    "correct": len(hits),
                    "incidents": len(incidents),
                    "replay_s": round(t1 - t0, 2),
                    "analysis_s": round(t2 - t1, 2),
                }
            )
    return {
        "runs": runs,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "right_direction": right_way / tp if tp else 0.0,
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--json", type=Path, help="write the figures as JSON here")
    p.add_argument("--top", type=int, default=10, help="flagged noisy rules checked at most")
    p.add_argument("--seeds", type=int, default=5, help="synthetic runs per topology")
    p.add_argument("--k", type=int, default=3, help="edges removed per run")
    p.add_argument("--events", type=int, default=30_000, help="alert events per storm")
    p.add_argument("--fault-every-s", type=float, default=600.0, help="seconds between faults")
    args = p.parse_args(argv)
    if args.top < 1 or args.seeds < 1 or args.k < 1 or args.events < 100:
        p.error("--top, --seeds and --k must be positive and --events at least 100")
    console = Console()

    rules = noisy_rules(args.top)
    table = Table(title=f"rca-dev: rules called noisy ({rules['incidents']} incidents)")
    for col in ("rule", "incidents", "noise", "lower bound", "background alerts"):
        table.add_column(col)
    for r in rules["flagged"]:
        table.add_row(
            r["rule"],
            str(r["incidents"]),
            f"{r['noise_share']:.2f}",
            f"{r['lower_bound']:.2f}",
            f"{r['background']}/{r['firing']}",
        )
    console.print(table)
    console.print(
        f"noisy-rule precision {rules['precision']:.2f} (mostly background; every alert "
        f"background: {rules['precision_strict']:.2f}); {len(rules['flagged'])} flagged of "
        f"{rules['rules']} rules, {rules['background_rules']} rules are mostly background"
    )

    edges = missing_edges(list(range(args.seeds)), args.k, args.events, args.fault_every_s)
    console.print(
        f"missing edges: {args.events} events per storm, one fault every "
        f"{args.fault_every_s:.0f} s, {args.k} edges removed per run"
    )
    for r in edges["runs"]:
        wrong = [e for e in r["suggested"] if {*e} not in [{*x} for x in r["removed"]]]
        missed = [e for e in r["removed"] if {*e} not in [{*x} for x in r["suggested"]]]
        console.print(
            f"  {r['topology']} seed {r['seed']}: {r['incidents']} incidents, "
            f"{r['correct']}/{len(r['removed'])} found"
            + (f"; wrong: {', '.join(' -> '.join(e) for e in wrong)}" if wrong else "")
            + (f"; missed: {', '.join(' -> '.join(e) for e in missed)}" if missed else "")
            + f" ({r['replay_s'] + r['analysis_s']:.1f} s)",
            soft_wrap=True,
        )
    console.print(
        f"edge precision {edges['precision']:.2f}, recall {edges['recall']:.2f} "
        f"({edges['true_positives']} right, {edges['false_positives']} wrong, "
        f"{edges['false_negatives']} missed; right direction {edges['right_direction']:.2f})"
    )
    ok = edges["precision"] >= 0.8 and edges["recall"] >= 0.5 and rules["precision"] >= 0.8
    console.print("targets met" if ok else "targets NOT met")
    if args.json:
        figures = {
            "edge_precision": edges["precision"],
            "edge_recall": edges["recall"],
            "noisy_rule_precision": rules["precision"],
            "noisy_rule_precision_strict": rules["precision_strict"],
            "edge_right_direction": edges["right_direction"],
            "settings": {
                "top": args.top,
                "seeds": args.seeds,
                "k": args.k,
                "events": args.events,
                "fault_every_s": args.fault_every_s,
            },
            "rca_dev": rules,
            "synthetic": edges,
            "targets_met": ok,
        }
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
