"""``make bench-partitioned``: one connected topology correlated as K domains plus the
cross-domain merge stage (issue 14), against single-domain correlation.

1. The bench storm (:mod:`benchmarks.storm`'s generator over one connected 1,000-service
   topology, ``components=1``, as ``make bench-storm`` uses it): single-domain replay, then
   the partitioned replay (:mod:`pipeline.offline.partitioned`: Louvain domains, one
   ``AlertPipeline`` per domain, steps of 1,000 alerts, summaries -> merge stage -> controls)
   at K = 2 and 4. Reports the pairwise precision/recall/F1 of the K-domain grouping against
   the single-domain grouping (:func:`benchmarks.grouping.pair_score`), the pairwise F1 of both
   against the storm's truth (the fault behind each alert: grouping quality, which the
   partitioned pipeline must keep within 0.02 of single-domain), incidents, cross-domain
   groups, merge-stage traffic and CPU time.
2. rca-dev at the default (``auto``: one domain for its 10 services): AC@1, AC@3 and pair F1
   (:mod:`benchmarks.rca_score`), which must equal ``make bench-correlation``'s, and for
   reference the same at K = 2.

Usage: ``python -m benchmarks.partitioned [--quick] [--alerts N ...] [--ks K ...]
[--fault-every S] [--json PATH]`` (``--quick``: 10,000 storm alerts instead of 30,000 and
100,000; ``--fault-every 300``: a sparse storm; the headline key is for the first K).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from benchmarks.correlation import load_rca
from benchmarks.grouping import group_by_label, group_of, pair_score
from benchmarks.rca_score import score
from benchmarks.storm import topology as storm_topology
from benchmarks.synthetic import storm
from pipeline.domain.domains import balance, build_domain_map, choose_k, cut_share
from pipeline.domain.schemas import Alert, Incident
from pipeline.domain.topology import Topology
from pipeline.offline.partitioned import PartitionedReplay
from pipeline.offline.replay import replay_alerts

KS = (2, 4)


def _cpu(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def _groups(incidents: Sequence[Incident]) -> dict[str, int]:
    return group_of(inc.alert_ids for inc in incidents)


def _records(incidents: Sequence[Incident]) -> list[dict[str, Any]]:
    return [msgspec.to_builtins(i) for i in incidents]


def storm_figures(
    topo: Topology,
    alerts: Sequence[Alert],
    ks: Sequence[int],
    truth: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Single-domain vs K-domain grouping of one storm, and both against the storm's
    ``truth`` (alert id -> the fault behind it) when given."""
    single, single_cpu = _cpu(lambda: replay_alerts(topo, alerts))
    ref = _groups(single)
    by_cause = group_by_label(truth or {})
    out: dict[str, Any] = {
        "alerts": len(alerts),
        "single_domain": {"incidents": len(single), "cpu_s": round(single_cpu, 2)},
        "per_k": {},
    }
    if by_cause:
        out["single_domain"]["pair_f1_vs_truth"] = round(pair_score(by_cause, ref).f1, 4)
    for k in ks:
        dmap, map_cpu = _cpu(partial(build_domain_map, topo, k))
        run = PartitionedReplay(topo, dmap)
        merged, cpu = _cpu(partial(run.run, alerts))
        ps = pair_score(ref, _groups(merged))
        st = run.stats
        out["per_k"][str(k)] = {
            **(
                {"pair_f1_vs_truth": round(pair_score(by_cause, _groups(merged)).f1, 4)}
                if by_cause
                else {}
            ),
            "pair_precision": round(ps.precision, 4),
            "pair_recall": round(ps.recall, 4),
            "pair_f1": round(ps.f1, 4),
            "alerts_compared": ps.common,
            "incidents": len(merged),
            "cross_domain_incidents": sum(
                1 for i in merged if i.explanation.startswith("Merged across")
            ),
            "cut_share": round(cut_share(topo, dmap), 3),
            "balance": round(balance(dmap), 3),
            "domain_map_cpu_s": round(map_cpu, 2),
            "cpu_s": round(cpu, 2),
            "summaries": st.summaries,
            "merge_relevant_summaries": st.relevant_summaries,
            "controls": st.controls,
            "unions": st.unions,
            "incident_events": st.events,
            "merge_peak_records": st.peak_records,
            "merge_cpu_s": round(st.merge_cpu_s, 2),
            "merge_us_per_summary": round(1e6 * st.merge_cpu_s / max(1, st.summaries)),
        }
    return out


def rca_figures() -> dict[str, Any]:
    """rca-dev at the default (auto) and at K = 2."""
    topo, alerts, truth = load_rca()
    k_auto = choose_k(topo, "auto")
    plain = replay_alerts(topo, alerts)
    out: dict[str, Any] = {"k_auto": k_auto}
    for name, k in (("auto", k_auto), ("k2", 2)):
        incs = PartitionedReplay(topo, build_domain_map(topo, k)).run(alerts)
        recs = _records(incs)
        recs.sort(key=lambda d: (d["opened_at"], d["id"]))  # replay output: opening order
        s = score(truth, recs)
        out[name] = {
            "k": k,
            "ac1": round(s.ac1, 3),
            "ac3": round(s.ac3, 3),
            "pair_f1": round(s.pair_f1, 3),
            "incidents": s.incidents,
            "pair_f1_vs_single_domain": round(pair_score(_groups(plain), _groups(incs)).f1, 4),
            "identical_to_replay": recs == _records(plain),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.partitioned",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("--quick", action="store_true", help="one storm of 10,000 alerts")
    p.add_argument("--alerts", type=int, nargs="*", help="storm sizes (alert events)")
    p.add_argument(
        "--fault-every",
        type=float,
        default=20.0,
        help="seconds between faults (20: the bench storm; 120 medium, 300 sparse)",
    )
    p.add_argument("--ks", type=int, nargs="*", default=list(KS), help="domain counts")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = p.parse_args(argv)
    sizes = args.alerts or ([10_000] if args.quick else [30_000, 100_000])
    console = Console(width=140)
    started = datetime.now(UTC)
    console.print(f"stormwatch bench-partitioned, {started:%Y-%m-%d %H:%M} UTC")
    topo = storm_topology(1000, components=1)
    storms = {}
    for n in sizes:
        truth: dict[str, str] = {}
        alerts = storm(topo, n, seed=11, fault_every_s=args.fault_every, truth=truth)
        storms[str(n)] = storm_figures(topo, alerts, args.ks, truth)
    rca = rca_figures()
    t = Table(title="bench storm, one connected 1,000-service topology: K domains vs one")
    for c in (
        "alerts",
        "K",
        "pair P",
        "pair R",
        "pair F1",
        "incidents (single)",
        "cross-domain",
        "cut",
        "balance",
        "F1 vs truth (single)",
        "summaries",
        "controls",
        "CPU s (single)",
    ):
        t.add_column(c, justify="right")
    for n, fig in storms.items():
        for k, f in fig["per_k"].items():
            t.add_row(
                n,
                k,
                f"{f['pair_precision']:.4f}",
                f"{f['pair_recall']:.4f}",
                f"{f['pair_f1']:.4f}",
                f"{f['incidents']} ({fig['single_domain']['incidents']})",
                str(f["cross_domain_incidents"]),
                f"{f['cut_share']:.3f}",
                f"{f['balance']:.3f}",
                f"{f['pair_f1_vs_truth']:.3f} ({fig['single_domain']['pair_f1_vs_truth']:.3f})",
                str(f["summaries"]),
                str(f["controls"]),
                f"{f['cpu_s']:.1f} ({fig['single_domain']['cpu_s']:.1f})",
            )
    console.print(t)
    a = rca["auto"]
    console.print(
        f"rca-dev, default domains (auto -> K={a['k']}): AC@1={a['ac1']:.2f} AC@3={a['ac3']:.2f} "
        f"pairF1={a['pair_f1']:.2f} (identical to replay: {a['identical_to_replay']}); "
        f"K=2: AC@1={rca['k2']['ac1']:.2f} "
        f"AC@3={rca['k2']['ac3']:.2f} pairF1={rca['k2']['pair_f1']:.2f} "
        f"(vs single-domain {rca['k2']['pair_f1_vs_single_domain']:.3f})",
        highlight=False,
    )
    first = storms[str(sizes[0])]["per_k"]
    headline = first[str(args.ks[0])]["pair_f1"]
    console.print(f"pair_f1_vs_single_domain (K={args.ks[0]}, {sizes[0]} alerts): {headline:.4f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "date": f"{started:%Y-%m-%d %H:%M} UTC",
                    "pair_f1_vs_single_domain": headline,
                    "storm": {
                        "topology": topo.name,
                        "services": len(topo.graph),
                        "fault_every_s": args.fault_every,
                        **storms,
                    },
                    "rca_dev": rca,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
