"""``make bench-insights``: are the insights right?

* **Noisy rules on rca-dev.** The real Online Boutique alert storm is replayed with its
  topology and fed, without any feedback, to :class:`Insights`. The rules it calls noisy
  (ranked, at most ``--top``) are checked against the truth: ``noisy_rule_precision`` is the
  share of them that are **background-only**, none of their firing alerts inside any fault's
  window (the truth labels alerts by time only, so a background alert that happens to fire
  inside a window counts as the fault's); ``noisy_rule_precision_mostly`` the share that are
  mostly background (more than half of their firing alerts outside every window).
* **Noisy rules on synthetic storms.** Background rules on schedules of their own
  (:mod:`benchmarks.background`) are mixed into storms over the DeathStarBench topologies;
  ``synthetic_noisy_rule_precision`` is the share of the flagged rules (at most ``--top`` per
  run, pooled) that are background-only, ``synthetic_noisy_rule_recall`` the share of the
  background-only rules that are flagged at all.
* **Missing edges on synthetic storms.** For each DeathStarBench topology and seed, ``--k``
  edges are removed from the topology (only edges whose removal leaves no path between their
  services, :func:`benchmarks.synthetic.remove_edges`); a storm of ``--events`` alert events,
  one fault every ``--fault-every-s`` seconds, is generated over the *true* topology
  (:func:`benchmarks.synthetic.storm`: faults, symptoms on callers up to 3 hops, traffic drops
  on dependencies, random noise) and replayed with the *reduced* one; the suggested missing
  edges are compared with the removed ones, ignoring direction (how many also have the right
  direction is printed). ``edge_precision`` and ``edge_recall`` are pooled over all runs;
  ``edge_precision_short`` and ``edge_recall_short`` the same with ``--short-events`` of
  history (how much the suggestions lose with less history).

Targets (issue 18): edge precision >= 0.8 at recall >= 0.5; noisy-rule precision >= 0.8.
Nothing in the method is fitted to these sets: the statistics use a 5 % false discovery rate,
three shared incidents at least; noisy rules the posterior of a parameter-free Bayes factor
(:mod:`pipeline.domain.insights.noise`) above one half.
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
from benchmarks.background import background_alerts, background_only, background_rules
from benchmarks.correlation import load_rca
from benchmarks.synthetic import T0, remove_edges, storm
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
                "background_probability": q.noise_probability,
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
        "background_only_rules": sum(1 for r in fired if background[r] == fired[r]),
        "flagged": rows,
        "precision": sum(r["background_share"] == 1.0 for r in rows) / n if n else 0.0,
        "precision_mostly": sum(r["background_share"] > 0.5 for r in rows) / n if n else 0.0,
    }


def synthetic_noisy_rules(
    seeds: list[int], top: int, events: int, fault_every_s: float, n_rules: int
) -> dict[str, Any]:
    """Flagged rules on storms with ``n_rules`` added background rules, against the truth."""
    runs = []
    flagged_total = right = truth_total = found = all_flagged = added = added_found = 0
    for name in TOPOLOGIES:
        topo = Topology.load(ROOT / "topologies" / f"{name}.yaml")
        for seed in seeds:
            alerts = storm(topo, events, seed=seed, fault_every_s=fault_every_s)
            end = alerts[-1].epoch if alerts else T0
            rules = background_rules(topo, n_rules, seed=seed)
            mixed = sorted(
                [*alerts, *background_alerts(rules, T0, end, seed=seed)],
                key=lambda a: a.epoch,
            )
            truth = background_only(mixed, rules)
            insights = Insights(team_of=topo.team)
            for inc in replay_alerts(topo, mixed):
                insights.observe_incident(inc)
            noisy = [(q.service, q.name) for q in insights.report().rules if q.noisy]
            top_rules = noisy[:top]
            hits = sum(r in truth for r in top_rules)
            flagged_total += len(top_rules)
            right += hits
            truth_total += len(truth)
            found += sum(r in truth for r in noisy)
            all_flagged += len(noisy)
            mine = {(r.service, r.name) for r in rules}
            added += len(mine)
            added_found += len(mine & set(noisy))
            runs.append(
                {
                    "topology": name,
                    "seed": seed,
                    "background_only": len(truth),
                    "flagged": len(noisy),
                    "top": len(top_rules),
                    "top_background_only": hits,
                    "added_flagged": len(mine & set(noisy)),
                    "wrong": [list(r) for r in top_rules if r not in truth],
                }
            )
    return {
        "runs": runs,
        "precision": right / flagged_total if flagged_total else 0.0,
        "precision_all_flagged": found / all_flagged if all_flagged else 0.0,
        "recall": found / truth_total if truth_total else 0.0,
        "added_recall": added_found / added if added else 0.0,
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
    p.add_argument(
        "--short-events", type=int, default=6_000, help="alert events per storm, less history"
    )
    p.add_argument(
        "--background-rules", type=int, default=12, help="background rules added per storm"
    )
    p.add_argument("--fault-every-s", type=float, default=600.0, help="seconds between faults")
    args = p.parse_args(argv)
    if args.top < 1 or args.seeds < 1 or args.k < 1 or min(args.events, args.short_events) < 100:
        p.error("--top, --seeds and --k must be positive and --(short-)events at least 100")
    if args.background_rules < 1:
        p.error("--background-rules must be positive")
    console = Console()

    rules = noisy_rules(args.top)
    table = Table(title=f"rca-dev: rules called noisy ({rules['incidents']} incidents)")
    for col in ("rule", "incidents", "P(background)", "noise share", "background alerts"):
        table.add_column(col)
    for r in rules["flagged"]:
        table.add_row(
            r["rule"],
            str(r["incidents"]),
            f"{r['background_probability']:.2f}",
            f"{r['noise_share']:.2f}",
            f"{r['background']}/{r['firing']}",
        )
    console.print(table)
    console.print(
        f"noisy-rule precision {rules['precision']:.2f} (background-only; mostly background: "
        f"{rules['precision_mostly']:.2f}); {len(rules['flagged'])} flagged of "
        f"{rules['rules']} rules; {rules['background_only_rules']} rules are background-only, "
        f"{rules['background_rules']} mostly background"
    )
    seeds = list(range(args.seeds))
    synth = synthetic_noisy_rules(
        seeds, args.top, args.short_events, args.fault_every_s, args.background_rules
    )
    n_added = args.background_rules
    for r in synth["runs"]:
        console.print(
            f"  {r['topology']} seed {r['seed']}: {r['flagged']} flagged, of the top "
            f"{r['top']} {r['top_background_only']} background-only "
            f"({r['background_only']} background-only rules; {r['added_flagged']} of the "
            f"{n_added} added ones flagged)"
            + (f"; wrong: {', '.join(' / '.join(w) for w in r['wrong'])}" if r["wrong"] else ""),
            soft_wrap=True,
        )
    console.print(
        f"synthetic noisy-rule precision {synth['precision']:.2f} (all flagged: "
        f"{synth['precision_all_flagged']:.2f}), recall {synth['recall']:.2f}, of the added "
        f"rules {synth['added_recall']:.2f} "
        f"({args.background_rules} background rules added to storms of {args.short_events} events)"
    )

    short = missing_edges(seeds, args.k, args.short_events, args.fault_every_s)
    console.print(
        f"missing edges with less history ({args.short_events} events per storm): precision "
        f"{short['precision']:.2f}, recall {short['recall']:.2f}"
    )
    edges = missing_edges(seeds, args.k, args.events, args.fault_every_s)
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
            "noisy_rule_precision_mostly": rules["precision_mostly"],
            "synthetic_noisy_rule_precision": synth["precision"],
            "synthetic_noisy_rule_precision_all_flagged": synth["precision_all_flagged"],
            "synthetic_noisy_rule_recall": synth["recall"],
            "synthetic_added_background_rule_recall": synth["added_recall"],
            "edge_precision_short": short["precision"],
            "edge_recall_short": short["recall"],
            "edge_right_direction": edges["right_direction"],
            "settings": {
                "top": args.top,
                "seeds": args.seeds,
                "k": args.k,
                "events": args.events,
                "short_events": args.short_events,
                "background_rules": args.background_rules,
                "fault_every_s": args.fault_every_s,
            },
            "rca_dev": rules,
            "synthetic_noisy_rules": synth,
            "synthetic": edges,
            "synthetic_short": short,
            "targets_met": ok,
        }
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
