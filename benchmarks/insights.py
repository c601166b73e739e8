"""``make bench-insights``: are the insights right?

* **Noisy rules on rca-dev.** The real Online Boutique alert storm is replayed with its
  topology and fed to :class:`Insights` with **simulated responder feedback**
  (:mod:`benchmarks.responder_feedback`: verdicts on ``--verdict-share`` of the incidents,
  ``--verdict-error`` of them wrong, from the truth as ``make bench-feedback`` derives them;
  pages acknowledged and resolved with lognormal delays), once per seed of
  ``--feedback-seeds``. The rules it calls noisy (ranked, at most ``--top``) are checked
  against the truth: ``noisy_rule_precision`` is the mean over the seeds of the share of them
  that are **background-only**, none of their firing alerts inside any fault's window (the
  truth labels alerts by time only, so a background alert that happens to fire inside a
  window counts as the fault's), ``noisy_rule_precision_min`` the worst seed;
  ``noisy_rule_precision_mostly`` the share that are mostly background (more than half of
  their firing alerts outside every window); ``noisy_rule_top3_precision`` and ``_top5_`` the
  share of background-only rules among the 3 and 5 highest-ranked rules, flagged or not.
  ``noisy_rule_recall`` is the share of the background-only rules flagged (mean over the
  seeds), ``noisy_rule_flagged_per_run`` how many rules each seed flags.
  ``noisy_rule_feedback`` states the setting. The same without any feedback:
  ``noisy_rule_precision_no_feedback`` (and ``..._mostly_``, ``..._top3_``, ``..._top5_``).
  A sensitivity table repeats it for verdict shares 25/50/100 % and error rates 0/10/20 %.
* **Noisy rules on synthetic storms.** Background rules on schedules of their own
  (:mod:`benchmarks.background`) are mixed into storms over the DeathStarBench topologies;
  ``synthetic_noisy_rule_precision`` is the share of the flagged rules (at most ``--top`` per
  run, pooled) that are background-only, ``synthetic_noisy_rule_recall`` the share of the
  background-only rules that are flagged at all; ``..._feedback`` the same with responder
  feedback simulated as on rca-dev (a fault's alerts are real, the storm's noise and the added
  rules are not).
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
* **Learned-edges mode.** For each of those runs, a new storm (seed + 1000,
  ``--short-events`` events) over the true topology is correlated with the reduced one,
  without and with the run's suggestions at confidence >= ``--learned-confidence`` as learned
  relations: ``learned_edges_pair_f1`` / ``learned_edges_ac1`` (with) and ``..._without``;
  pair F1 against the faults (mean over runs), AC@1 over all faults, and
  ``learned_edges_ac1_touched`` over the faults in services a removed edge touched.

``--parts`` runs a subset (``rca``, ``synthetic``, ``edges``, ``learned``).

Targets (issue 18): edge precision >= 0.8 at recall >= 0.5; noisy-rule precision >= 0.8.
Nothing in the method is fitted to these sets: the statistics use a 5 % false discovery rate,
three shared incidents at least; noisy rules the posterior of a parameter-free Bayes factor
(:mod:`pipeline.domain.insights.noise`) above one half.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import ROOT
from benchmarks.background import background_alerts, background_only, background_rules
from benchmarks.correlation import load_rca
from benchmarks.grouping import group_by_label, group_of, pair_score
from benchmarks.responder_feedback import FeedbackSetting, simulate
from benchmarks.synthetic import T0, remove_edges, storm
from pipeline.domain.insights import Insights, learned
from pipeline.domain.insights.topology import EdgeSuggestion
from pipeline.domain.schemas import Alert, Feedback, Incident
from pipeline.domain.topology import Topology
from pipeline.offline.replay import replay_alerts

TOPOLOGIES = ("deathstarbench-social-network", "deathstarbench-media")
#: the top-k of the ranked rules whose precision is reported
TOP_K = (3, 5)
#: verdict shares and error rates of the sensitivity table
SHARES = (0.25, 0.5, 1.0)
ERRORS = (0.0, 0.1, 0.2)


@dataclass(frozen=True)
class RcaDev:
    """rca-dev replayed once, with what the truth says of each rule."""

    topology: Topology
    incidents: list[Incident]
    alert_fault: dict[str, str | None]
    #: firing alerts per rule, and of those outside every fault window
    fired: Counter[tuple[str, str]]
    background: Counter[tuple[str, str]]

    def background_only(self, rule: tuple[str, str]) -> bool:
        return self.fired[rule] > 0 and self.background[rule] == self.fired[rule]


def load_rca_dev() -> RcaDev:
    topo, alerts, truth = load_rca()
    alert_fault: dict[str, str | None] = truth["alert_fault"]
    fired: Counter[tuple[str, str]] = Counter()
    background: Counter[tuple[str, str]] = Counter()
    for a in alerts:
        if a.status.value == "firing":
            fired[(a.service, a.name)] += 1
            background[(a.service, a.name)] += alert_fault.get(a.id) is None
    return RcaDev(topo, replay_alerts(topo, alerts), alert_fault, fired, background)


def noisy_rules(rca: RcaDev, top: int, feedback: list[Feedback] | None = None) -> dict[str, Any]:
    """Flagged rules on rca-dev (given ``feedback``, or none) and how many are background by
    the truth; the precision of the ``TOP_K`` highest-ranked rules, flagged or not."""
    insights = Insights(team_of=rca.topology.team)
    for inc in rca.incidents:
        insights.observe_incident(inc)
    for fb in feedback or []:
        insights.observe_feedback(fb)
    report = insights.report(rca.topology.graph)
    fired, background = rca.fired, rca.background
    flagged = [q for q in report.rules if q.noisy][:top]
    rows: list[dict[str, Any]] = []
    for q in flagged:
        rule = (q.service, q.name)
        share = background[rule] / fired[rule] if fired[rule] else 0.0
        rows.append(
            {
                "rule": f"{q.service} / {q.name}",
                "incidents": q.incidents,
                "verdicts": q.verdicts,
                "noise_verdict_share": q.noise_verdict_share,
                "noise_share": q.noise_share,
                "lower_bound": q.noise_lower_bound,
                "background_probability": q.noise_probability,
                "firing": fired[rule],
                "background": background[rule],
                "background_share": share,
            }
        )
    n = len(rows)
    ranked = [rca.background_only((q.service, q.name)) for q in report.rules]
    only = sum(1 for r in fired if background[r] == fired[r])
    return {
        "incidents": len(rca.incidents),
        "feedback": len(feedback or []),
        "rules": len(report.rules),
        "background_rules": sum(1 for r in fired if background[r] * 2 > fired[r]),
        "background_only_rules": sum(1 for r in fired if background[r] == fired[r]),
        "flagged": rows,
        "precision": sum(r["background_share"] == 1.0 for r in rows) / n if n else 0.0,
        "precision_mostly": sum(r["background_share"] > 0.5 for r in rows) / n if n else 0.0,
        # the share of the background-only rules that are flagged (so precision is not
        # bought by flagging nothing)
        "recall": sum(r["background_share"] == 1.0 for r in rows) / only if only else 0.0,
        **{f"top{k}_precision": sum(ranked[:k]) / k for k in TOP_K},
    }


def noisy_rules_with_feedback(
    rca: RcaDev, top: int, share: float, error: float, seeds: list[int]
) -> dict[str, Any]:
    """:func:`noisy_rules` under simulated responder feedback (:mod:`.responder_feedback`)
    with verdicts on ``share`` of the incidents, ``error`` of them wrong, once per seed:
    the mean and the minimum of each figure over the seeds."""
    runs = []
    for seed in seeds:
        setting = FeedbackSetting(verdict_share=share, verdict_error=error, seed=seed)
        runs.append(noisy_rules(rca, top, simulate(rca.incidents, rca.alert_fault, setting)))
    keys = ["precision", "precision_mostly", "recall", *(f"top{k}_precision" for k in TOP_K)]
    out: dict[str, Any] = {
        "setting": FeedbackSetting(share, error).describe() | {"seeds": seeds},
        "flagged_per_run": [len(r["flagged"]) for r in runs],
        "first_run": runs[0],
    }
    for key in keys:
        values = [r[key] for r in runs]
        out[key] = sum(values) / len(values)
        out[f"{key}_min"] = min(values)
    return out


def synthetic_noisy_rules(
    seeds: list[int],
    top: int,
    events: int,
    fault_every_s: float,
    n_rules: int,
    feedback: FeedbackSetting | None = None,
) -> dict[str, Any]:
    """Flagged rules on storms with ``n_rules`` added background rules, against the truth;
    with ``feedback``, responders' feedback simulated as on rca-dev (its seed: the run's)."""
    runs = []
    flagged_total = right = truth_total = found = all_flagged = added = added_found = 0
    for name in TOPOLOGIES:
        topo = Topology.load(ROOT / "topologies" / f"{name}.yaml")
        for seed in seeds:
            cause: dict[str, str] = {}
            alerts = storm(topo, events, seed=seed, fault_every_s=fault_every_s, truth=cause)
            end = alerts[-1].epoch if alerts else T0
            rules = background_rules(topo, n_rules, seed=seed)
            mixed = sorted(
                [*alerts, *background_alerts(rules, T0, end, seed=seed)],
                key=lambda a: a.epoch,
            )
            truth = background_only(mixed, rules)
            insights = Insights(team_of=topo.team)
            incidents = replay_alerts(topo, mixed)
            for inc in incidents:
                insights.observe_incident(inc)
            if feedback is not None:
                # an alert of a fault is real; the storm's noise and the added rules are not
                fault = {a: c if c.startswith("f") else None for a, c in cause.items()}
                setting = dataclasses.replace(feedback, seed=seed)
                for fb in simulate(incidents, fault, setting):
                    insights.observe_feedback(fb)
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


def missing_edges(
    seeds: list[int],
    k: int,
    events: int,
    fault_every_s: float,
    suggestions: dict[tuple[str, int], list[EdgeSuggestion]] | None = None,
) -> dict[str, Any]:
    """Suggested against removed edges over every topology and seed (the suggestions of each
    run into ``suggestions``, by topology and seed, when given)."""
    if suggestions is None:
        suggestions = {}
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
            suggestions[(name, seed)] = report.suggested_edges
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


def _rca_table(console: Console, rules: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    for col in ("rule", "incidents", "verdicts", "P(background)", "background alerts"):
        table.add_column(col)
    for r in rules["flagged"]:
        table.add_row(
            r["rule"],
            str(r["incidents"]),
            str(r["verdicts"]),
            f"{r['background_probability']:.2f}",
            f"{r['background']}/{r['firing']}",
        )
    console.print(table)


def rca_part(console: Console, args: argparse.Namespace) -> dict[str, Any]:
    """Noisy rules on rca-dev: without feedback, with the simulated feedback, sensitivity."""
    rca = load_rca_dev()
    bare = noisy_rules(rca, args.top)
    _rca_table(
        console, bare, f"rca-dev, no feedback: rules called noisy ({bare['incidents']} incidents)"
    )
    console.print(
        f"no feedback: noisy-rule precision {bare['precision']:.2f} (mostly background: "
        f"{bare['precision_mostly']:.2f}; top 3 {bare['top3_precision']:.2f}, top 5 "
        f"{bare['top5_precision']:.2f}); {len(bare['flagged'])} flagged of {bare['rules']} "
        f"rules; {bare['background_only_rules']} rules are background-only (recall "
        f"{bare['recall']:.2f}), "
        f"{bare['background_rules']} mostly background"
    )
    seeds = list(range(args.feedback_seeds))
    fed = noisy_rules_with_feedback(rca, args.top, args.verdict_share, args.verdict_error, seeds)
    _rca_table(
        console,
        fed["first_run"],
        f"rca-dev with feedback (verdicts on {args.verdict_share:.0%}, {args.verdict_error:.0%} "
        f"wrong; seed 0): rules called noisy",
    )
    console.print(
        f"with feedback: noisy-rule precision {fed['precision']:.2f} mean, "
        f"{fed['precision_min']:.2f} min over {len(seeds)} seeds (mostly background "
        f"{fed['precision_mostly']:.2f}); top 3 {fed['top3_precision']:.2f} "
        f"(min {fed['top3_precision_min']:.2f}), top 5 {fed['top5_precision']:.2f} "
        f"(min {fed['top5_precision_min']:.2f}); flagged per run {fed['flagged_per_run']}; "
        f"recall of the background-only rules {fed['recall']:.2f} (min {fed['recall_min']:.2f})"
    )
    table = Table(title=f"sensitivity: noisy-rule precision, {len(seeds)} seeds (mean / min)")
    for col in (
        "verdict share",
        "verdict error",
        "precision",
        "recall",
        "top 3",
        "top 5",
        "flagged",
    ):
        table.add_column(col)
    grid = []
    for share in SHARES:
        for error in ERRORS:
            cell = noisy_rules_with_feedback(rca, args.top, share, error, seeds)
            grid.append(
                {
                    "verdict_share": share,
                    "verdict_error": error,
                    **{k: v for k, v in cell.items() if k not in ("setting", "first_run")},
                }
            )
            table.add_row(
                f"{share:.0%}",
                f"{error:.0%}",
                f"{cell['precision']:.2f} / {cell['precision_min']:.2f}",
                f"{cell['recall']:.2f} / {cell['recall_min']:.2f}",
                f"{cell['top3_precision']:.2f} / {cell['top3_precision_min']:.2f}",
                f"{cell['top5_precision']:.2f} / {cell['top5_precision_min']:.2f}",
                f"{min(cell['flagged_per_run'])}-{max(cell['flagged_per_run'])}",
            )
    console.print(table)
    return {"no_feedback": bare, "feedback": fed, "sensitivity": grid}


def synthetic_rules_part(console: Console, args: argparse.Namespace) -> dict[str, Any]:
    synth = _synthetic_rules(console, args, None)
    setting = FeedbackSetting(args.verdict_share, args.verdict_error)
    fed = _synthetic_rules(console, args, setting)
    return synth | {"feedback": fed}


def _synthetic_rules(
    console: Console, args: argparse.Namespace, feedback: FeedbackSetting | None
) -> dict[str, Any]:
    synth = synthetic_noisy_rules(
        list(range(args.seeds)),
        args.top,
        args.short_events,
        args.fault_every_s,
        args.background_rules,
        feedback,
    )
    if feedback is not None:
        console.print(
            f"with feedback (verdicts on {feedback.verdict_share:.0%}, "
            f"{feedback.verdict_error:.0%} wrong):"
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
        f"synthetic noisy-rule precision {synth['precision']:.2f}"
        + (" with feedback" if feedback is not None else "")
        + f" (all flagged: "
        f"{synth['precision_all_flagged']:.2f}), recall {synth['recall']:.2f}, of the added "
        f"rules {synth['added_recall']:.2f} "
        f"({args.background_rules} background rules added to storms of {args.short_events} events)"
    )
    return synth


def edges_part(
    console: Console,
    args: argparse.Namespace,
    suggestions: dict[tuple[str, int], list[EdgeSuggestion]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    seeds = list(range(args.seeds))
    short = missing_edges(seeds, args.k, args.short_events, args.fault_every_s)
    console.print(
        f"missing edges with less history ({args.short_events} events per storm): precision "
        f"{short['precision']:.2f}, recall {short['recall']:.2f}"
    )
    edges = missing_edges(seeds, args.k, args.events, args.fault_every_s, suggestions)
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
    return edges, short


def _ac1(
    incidents: list[Incident], truth: dict[str, str], alerts: list[Alert]
) -> list[tuple[str, bool]]:
    """Per fault: the service it was injected into (the one raising its ``CPUSaturation``),
    and whether that is the root cause of the incident holding most of the fault's alerts."""
    root: dict[str, str] = {}
    for a in alerts:
        if a.name == "CPUSaturation" and truth.get(a.id, "").startswith("f"):
            root.setdefault(truth[a.id], a.service)
    holder: dict[str, Incident] = {}
    for inc in incidents:
        for aid in inc.alert_ids:
            holder[aid] = inc
    by_fault: dict[str, list[str]] = {}
    for aid, fault in truth.items():
        if aid in holder:
            by_fault.setdefault(fault, []).append(aid)
    out = []
    for fault, service in sorted(root.items()):
        ids = by_fault.get(fault, [])
        if not ids:
            out.append((service, False))
            continue
        best = Counter(holder[a].id for a in ids).most_common(1)[0][0]
        inc = next(holder[a] for a in ids if holder[a].id == best)
        out.append((service, inc.root_cause == service))
    return out


def learned_edges(
    seeds: list[int],
    k: int,
    events: int,
    fault_every_s: float,
    min_confidence: float,
    suggestions: dict[tuple[str, int], list[EdgeSuggestion]],
) -> dict[str, Any]:
    """Learned-edges mode: for every run of :func:`missing_edges`, a new storm (another seed,
    ``events`` alert events) over the true topology is correlated with the reduced one, without
    and with the run's suggested edges at or above ``min_confidence`` as learned relations;
    pair F1 against the faults (pooled as a mean over runs) and AC@1 (pooled over faults)."""
    runs = []
    f1s: dict[str, list[float]] = {"without": [], "with": []}
    hits: dict[str, list[bool]] = {"without": [], "with": []}
    #: faults in a service the removed edges touched
    near: dict[str, list[bool]] = {"without": [], "with": []}
    for name in TOPOLOGIES:
        true = Topology.load(ROOT / "topologies" / f"{name}.yaml")
        for seed in seeds:
            given, removed = remove_edges(true, k, seed=seed)
            rels = learned.relations(suggestions.get((name, seed), []), min_confidence)
            cause: dict[str, str] = {}
            alerts = storm(true, events, seed=seed + 1000, fault_every_s=fault_every_s, truth=cause)
            row: dict[str, Any] = {
                "topology": name,
                "seed": seed,
                "removed": [list(e) for e in removed],
                "relations": [list(r) for r in rels],
            }
            for arm, use in (("without", ()), ("with", rels)):
                incs = replay_alerts(given, alerts, relations=use)
                members = group_of(inc.alert_ids for inc in incs)
                f1 = pair_score(group_by_label(cause), members).f1
                right = _ac1(incs, cause, alerts)
                touched = {s for e in removed for s in e}
                row[arm] = {
                    "pair_f1": f1,
                    "ac1": sum(h for _, h in right) / len(right) if right else 0.0,
                }
                f1s[arm].append(f1)
                hits[arm].extend(h for _, h in right)
                near[arm].extend(h for svc, h in right if svc in touched)
            runs.append(row)
    summary = {
        arm: {
            "pair_f1": sum(f1s[arm]) / len(f1s[arm]),
            "ac1": sum(hits[arm]) / len(hits[arm]),
            "ac1_touched": sum(near[arm]) / len(near[arm]) if near[arm] else 0.0,
            "faults_touched": len(near[arm]),
        }
        for arm in f1s
    }
    return {"runs": runs, **summary, "min_confidence": min_confidence, "events": events}


def learned_part(
    console: Console,
    args: argparse.Namespace,
    suggestions: dict[tuple[str, int], list[EdgeSuggestion]] | None,
) -> dict[str, Any]:
    seeds = list(range(args.seeds))
    if suggestions is None:
        suggestions = {}
        missing_edges(seeds, args.k, args.events, args.fault_every_s, suggestions)
    res = learned_edges(
        seeds, args.k, args.short_events, args.fault_every_s, args.learned_confidence, suggestions
    )
    for r in res["runs"]:
        console.print(
            f"  {r['topology']} seed {r['seed']}: {len(r['relations'])} learned relations; pair "
            f"F1 {r['without']['pair_f1']:.3f} -> {r['with']['pair_f1']:.3f}, AC@1 "
            f"{r['without']['ac1']:.2f} -> {r['with']['ac1']:.2f}",
            soft_wrap=True,
        )
    console.print(
        f"learned-edges mode (suggestions at confidence >= {args.learned_confidence}, new storms "
        f"of {args.short_events} events): pair F1 {res['without']['pair_f1']:.3f} -> "
        f"{res['with']['pair_f1']:.3f}, AC@1 {res['without']['ac1']:.3f} -> "
        f"{res['with']['ac1']:.3f}; faults in services a removed edge touched "
        f"({res['with']['faults_touched']}): AC@1 {res['without']['ac1_touched']:.3f} -> "
        f"{res['with']['ac1_touched']:.3f}"
    )
    return res


PARTS = ("rca", "synthetic", "edges", "learned")


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
    p.add_argument(
        "--verdict-share", type=float, default=0.5, help="share of incidents given a verdict"
    )
    p.add_argument("--verdict-error", type=float, default=0.1, help="share of verdicts wrong")
    p.add_argument(
        "--feedback-seeds", type=int, default=10, help="simulated feedback runs per setting"
    )
    p.add_argument(
        "--learned-confidence",
        type=float,
        default=0.99,
        help="learned-edges mode: the confidence a suggested edge needs (as the worker's default)",
    )
    p.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to run, of {', '.join(PARTS)} (default: all)",
    )
    args = p.parse_args(argv)
    if args.top < 1 or args.seeds < 1 or args.k < 1 or min(args.events, args.short_events) < 100:
        p.error("--top, --seeds and --k must be positive and --(short-)events at least 100")
    if args.background_rules < 1 or args.feedback_seeds < 1:
        p.error("--background-rules and --feedback-seeds must be positive")
    if not (0 <= args.verdict_share <= 1 and 0 <= args.verdict_error <= 1):
        p.error("--verdict-share and --verdict-error must be between 0 and 1 (e.g. 0.5, 0.1)")
    if not 0.5 <= args.learned_confidence <= 1:
        p.error("--learned-confidence must be between 0.5 and 1 (e.g. 0.99)")
    parts = {x.strip() for x in args.parts.split(",") if x.strip()}
    if not parts or parts - set(PARTS):
        p.error(f"--parts takes a comma-separated list of {', '.join(PARTS)}")
    console = Console()
    figures: dict[str, Any] = {}
    ok = True
    if "rca" in parts:
        rca = rca_part(console, args)
        fed, bare = rca["feedback"], rca["no_feedback"]
        ok = ok and fed["precision"] >= 0.8
        figures |= {
            "noisy_rule_precision": fed["precision"],
            "noisy_rule_precision_min": fed["precision_min"],
            "noisy_rule_precision_mostly": fed["precision_mostly"],
            "noisy_rule_recall": fed["recall"],
            "noisy_rule_recall_min": fed["recall_min"],
            "noisy_rule_flagged_per_run": fed["flagged_per_run"],
            "noisy_rule_top3_precision": fed["top3_precision"],
            "noisy_rule_top5_precision": fed["top5_precision"],
            "noisy_rule_feedback": fed["setting"],
            "noisy_rule_precision_no_feedback": bare["precision"],
            "noisy_rule_recall_no_feedback": bare["recall"],
            "noisy_rule_precision_mostly_no_feedback": bare["precision_mostly"],
            "noisy_rule_top3_precision_no_feedback": bare["top3_precision"],
            "noisy_rule_top5_precision_no_feedback": bare["top5_precision"],
            "rca_dev": rca,
        }
    if "synthetic" in parts:
        synth = synthetic_rules_part(console, args)
        figures |= {
            "synthetic_noisy_rule_precision": synth["precision"],
            "synthetic_noisy_rule_precision_all_flagged": synth["precision_all_flagged"],
            "synthetic_noisy_rule_recall": synth["recall"],
            "synthetic_added_background_rule_recall": synth["added_recall"],
            "synthetic_noisy_rule_precision_feedback": synth["feedback"]["precision"],
            "synthetic_noisy_rule_precision_all_flagged_feedback": synth["feedback"][
                "precision_all_flagged"
            ],
            "synthetic_noisy_rule_recall_feedback": synth["feedback"]["recall"],
            "synthetic_noisy_rules": synth,
        }
    suggestions: dict[tuple[str, int], list[EdgeSuggestion]] | None = None
    if "edges" in parts:
        suggestions = {}
        edges, short = edges_part(console, args, suggestions)
        ok = ok and edges["precision"] >= 0.8 and edges["recall"] >= 0.5
        figures |= {
            "edge_precision": edges["precision"],
            "edge_recall": edges["recall"],
            "edge_precision_short": short["precision"],
            "edge_recall_short": short["recall"],
            "edge_right_direction": edges["right_direction"],
            "synthetic": edges,
            "synthetic_short": short,
        }
    if "learned" in parts:
        res = learned_part(console, args, suggestions)
        figures |= {
            "learned_edges_pair_f1": res["with"]["pair_f1"],
            "learned_edges_ac1": res["with"]["ac1"],
            "learned_edges_pair_f1_without": res["without"]["pair_f1"],
            "learned_edges_ac1_without": res["without"]["ac1"],
            "learned_edges_ac1_touched": res["with"]["ac1_touched"],
            "learned_edges_ac1_touched_without": res["without"]["ac1_touched"],
            "learned_edges": res,
        }
    if not parts & {"rca", "edges"}:
        verdict = "targets not measured (they are in the rca and edges parts)"
    else:
        verdict = "targets met" if ok else "targets NOT met"
    console.print(verdict + f" (parts: {', '.join(sorted(parts))})")
    if args.json:
        figures["settings"] = {
            "top": args.top,
            "seeds": args.seeds,
            "k": args.k,
            "events": args.events,
            "short_events": args.short_events,
            "background_rules": args.background_rules,
            "fault_every_s": args.fault_every_s,
            "verdict_share": args.verdict_share,
            "verdict_error": args.verdict_error,
            "feedback_seeds": args.feedback_seeds,
            "learned_confidence": args.learned_confidence,
            "parts": sorted(parts),
        }
        figures["targets_met"] = ok
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
