"""Correlation of one connected topology across workers: partitioning, merge stage, quality.

Run (from anywhere; ~30 min on the shared 2-core machine, ``--quick`` ~5 min):

    /work/main/.venv/bin/python /work/scratch/partition/bench.py [--quick] [--json OUT]

Imports the stormwatch code from the snapshot in ``snap/`` (commit in ``snap/COMMIT``) so the
figures do not move while the repository is restructured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "snap"), str(HERE)]

import networkx as nx  # noqa: E402

from merge import Merger  # noqa: E402
from partition import (  # noqa: E402
    METHODS,
    balance,
    cut_share,
    halo,
    domain_map,
    moved_share,
    partition,
    sticky_update,
)
from pipeline.bench.storm import topology as bench_topology  # noqa: E402
from pipeline.domain.topology import Topology  # noqa: E402
from run import pair_scores, partitioned, single_domain, truth_scores  # noqa: E402
from storms import check, labelled_storm, load_rca  # noqa: E402

TOPO_DIR = Path("/work/shared/data/topologies")
OB = HERE / "snap" / "topologies" / "online-boutique.yaml"
RECOMMENDED = "louvain"


def graphs() -> dict[str, Topology]:
    return {
        "bench-1000 (components=1)": bench_topology(1000, components=1),
        "online-boutique": Topology.load(OB),
        "dsb-media": Topology.load(TOPO_DIR / "deathstarbench-media.yaml"),
        "dsb-social": Topology.load(TOPO_DIR / "deathstarbench-social-network.yaml"),
    }


def table(title: str, cols: list[str], rows: list[list[object]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for r in rows:
        print("| " + " | ".join(_fmt(x) for x in r) + " |")
    sys.stdout.flush()


def _fmt(x: object) -> str:
    if isinstance(x, float):
        return f"{x:.3f}" if abs(x) < 10 else f"{x:,.0f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


# ------------------------------------------------------------------------------ 1 partitioning


def part_tables(quick: bool, out: dict) -> None:
    rows = []
    gs = graphs()
    if not quick:
        gs["bench-10000 (components=1)"] = bench_topology(10_000, components=1)
    for gname, topo in gs.items():
        n = topo.graph.number_of_nodes()
        for m in METHODS:
            for k in (2, 4, 8, 16):
                if k >= n:
                    continue
                if m == "greedy" and n > 5000:
                    if k in (2, 16):
                        rows.append([gname, m, k, "", "", "", "", "17-22 s (measured once)"])
                    continue
                if m == "kl" and k & (k - 1):
                    continue
                t0 = time.perf_counter()
                parts = partition(topo.graph, k, m)
                dt = time.perf_counter() - t0
                dom = domain_map(topo.name, parts)
                bshare, fan = halo(topo.graph, dom) if n <= 2000 else (float("nan"),) * 2
                rows.append([gname, m, k, cut_share(topo.graph, dom), balance(parts, k),
                             bshare, fan, f"{dt:.2f} s"])
                out.setdefault("partition", []).append(
                    {"graph": gname, "method": m, "k": k, "cut": cut_share(topo.graph, dom),
                     "balance": balance(parts, k), "boundary": bshare, "fanout": fan,
                     "seconds": dt})
    table("Partitioning: edge-cut share, balance (largest / ideal), boundary share (services "
          "related within the correlator's relation to another domain), halo fan-out (domains "
          "an alert would reach if boundary alerts were routed to every related domain), time",
          ["graph", "method", "K", "edge cut", "balance", "boundary", "halo fan-out", "time"],
          rows)


def _digest(method: str, k: int, reverse: bool) -> str:
    topo = bench_topology(1000, components=1)
    edges = sorted(topo.graph.edges)
    nodes = sorted(topo.graph.nodes)
    if reverse:  # same topology, another file order
        edges, nodes = edges[::-1], nodes[::-1]
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    dom = domain_map("x", partition(g, k, method))
    return hashlib.sha1(json.dumps(sorted(dom.items())).encode()).hexdigest()[:10]


def determinism(out: dict) -> None:
    rows = []
    for m in ("louvain", "kl", "fluid", "greedy", "bfs"):
        digests = set()
        for seed, rev in (("0", False), ("1", False), ("2", True), ("random", True)):
            env = dict(os.environ, PYTHONHASHSEED=seed)
            r = subprocess.run(
                [sys.executable, __file__, "--digest", m, "8", "1" if rev else "0"],
                env=env, capture_output=True, text=True, check=True)
            digests.add(r.stdout.strip())
        rows.append([m, len(digests) == 1, ", ".join(sorted(digests))])
        out.setdefault("determinism", {})[m] = len(digests) == 1
    table("Determinism: bench-1000, K=8, 4 processes (PYTHONHASHSEED 0, 1, 2, random; two "
          "with the file order reversed)", ["method", "same domains", "digests"], rows)


def stability(out: dict) -> None:
    rows = []
    for gname, n, k in (("bench-1000", 1000, 8), ("bench-10000", 10_000, 16)):
        topo = bench_topology(n, components=1)
        edges = sorted(topo.graph.edges)
        for m in ("louvain", "kl", "fluid", "bfs"):
            base = domain_map("x", partition(topo.graph, k, m))
            moved_l, moved_m = [], []
            for trial in range(3):
                rng = random.Random(100 + trial)
                drop = set(rng.sample(edges, max(1, len(edges) // 100)))
                g = nx.DiGraph()
                g.add_nodes_from(topo.graph.nodes)
                g.add_edges_from(e for e in edges if e not in drop)
                new = domain_map("x", partition(g, k, m))
                a, b = moved_share(base, new)
                moved_l.append(a)
                moved_m.append(b)
            rows.append([gname, m, k, sum(moved_l) / 3, sum(moved_m) / 3, "", "", ""])
            out.setdefault("stability", []).append(
                {"graph": gname, "method": m, "k": k, "moved_label": sum(moved_l) / 3,
                 "moved_matched": sum(moved_m) / 3})
        # sticky: keep the map, place new services by their neighbours
        base = domain_map("x", partition(topo.graph, k, RECOMMENDED))
        for change, drop_share, add_share in (("1% edges removed", 0.01, 0.0),
                                              ("1% edges removed + 1% new services", 0.01, 0.01),
                                              ("10% edges rewired + 5% new services", 0.10, 0.05)):
            rng = random.Random(7)
            drop = set(rng.sample(edges, int(len(edges) * drop_share)))
            g = nx.DiGraph()
            g.add_nodes_from(topo.graph.nodes)
            g.add_edges_from(e for e in edges if e not in drop)
            nodes = sorted(topo.graph.nodes)
            if change.startswith("10%"):  # rewire: as many new random edges as dropped
                for _ in range(len(drop)):
                    a, b = rng.sample(nodes, 2)
                    g.add_edge(a, b)
            for i in range(int(n * add_share)):
                s = f"new-{i}"
                for t in rng.sample(nodes, 2):
                    g.add_edge(s, t)
            new = sticky_update(base, g, "x")
            fresh = domain_map("x", partition(g, k, RECOMMENDED))
            parts: dict[str, set[str]] = {}
            for s_, d_ in new.items():
                parts.setdefault(d_, set()).add(s_)
            rows.append([gname, f"{RECOMMENDED} + sticky update ({change})", k,
                         moved_share(base, new)[0], moved_share(base, new)[1],
                         f"{cut_share(topo.graph, base):.3f} -> {cut_share(g, new):.3f}",
                         f"{cut_share(g, fresh):.3f}",
                         f"{balance(list(parts.values()), k):.2f}"])
    table("Stability: 1% of edges removed (3 random draws): share of services whose domain "
          "label changes (label = smallest service of the domain), and that move after the best "
          "matching of old to new domains; sticky update: the old map carried over",
          ["graph", "method", "K", "moved (label)", "moved (matched)", "cut (sticky)",
           "cut (fresh repartition)", "balance (sticky)"], rows)


# ------------------------------------------------------------------------------ 3 quality


def storms(quick: bool) -> list[tuple[str, Topology, list, dict]]:
    b = bench_topology(1000, components=1)
    check(b, 5000)
    out = []
    out.append(("bench-1000 dense 30k", b, *labelled_storm(b, 30_000)))
    if not quick:
        out.append(("bench-1000 dense 100k", b, *labelled_storm(b, 100_000)))
    out.append(("bench-1000 medium 30k (fault/120 s)", b, *labelled_storm(b, 30_000,
                                                                         fault_every_s=120)))
    out.append(("bench-1000 sparse 30k (fault/300 s)", b, *labelled_storm(b, 30_000,
                                                                          fault_every_s=300)))
    for name, f in (("dsb-media", "deathstarbench-media"),
                    ("dsb-social", "deathstarbench-social-network")):
        t = Topology.load(TOPO_DIR / f"{f}.yaml")
        out.append((f"{name} dense 10k", t, *labelled_storm(t, 10_000)))
        out.append((f"{name} sparse 10k (fault/300 s)", t, *labelled_storm(t, 10_000,
                                                                          fault_every_s=300)))
    out.append(("rca-dev (real)", *load_rca()))
    return out


def _shuffled(alerts: list, seed: int, window: float = 10.0) -> list:
    """The same alerts, the order within each ``window`` seconds of event time shuffled."""
    rng = random.Random(seed)
    keyed = [(int(a.epoch // window), rng.random(), a) for a in alerts]
    keyed.sort(key=lambda x: (x[0], x[1]))
    return [a for *_, a in keyed]


STEP_MODES = {"backlog": None, "live": 10.0}


def quality(quick: bool, out: dict) -> None:
    rows = []
    costs = []
    summary = []
    for sname, topo, alerts, truth in storms(quick):
        single = single_domain(topo, alerts)
        ts = truth_scores(truth, single)
        floor = min(pair_scores(single, single_domain(topo, _shuffled(alerts, s)))[2]
                    for s in range(2))
        rows.append([sname, "single domain", "-", "", "", "", "", ts["ac1"], ts["pair_f1"],
                     ts["incidents"], "", "", "", f"{single.stats['cpu_s']:.1f}"])
        rows.append([sname, "single domain, order within 10 s shuffled (floor)", "-", "", "",
                     floor, "", "", "", "", "", "", "", ""])
        plan = [(k, RECOMMENDED, "mirror", True, mode) for mode in STEP_MODES
                for k in (2, 4, 8)]
        if not quick:
            plan += [(k, RECOMMENDED, "hybrid", True, "live") for k in (2, 8)]
            if "bench-1000" in sname and "medium" not in sname and "100k" not in sname:
                plan += [(k, RECOMMENDED, "mirror", True, "backlog") for k in (16, 32)]
        if not quick and ("30k" in sname and "medium" not in sname or "rca" in sname):
            plan += [(8, RECOMMENDED, "none", True, "backlog"),
                     (8, RECOMMENDED, "naive", True, "backlog"),
                     (8, RECOMMENDED, "mirror", False, "backlog"),
                     (8, "hash", "mirror", True, "backlog"),
                     (8, "hash", "mirror", True, "live")]
        best = {}
        for k, method, mode, fb, step_mode in plan:
            dom = domain_map(topo.name, partition(topo.graph, k, method))
            t0 = time.process_time()
            g = partitioned(topo, alerts, dom, mode=mode, span_feedback=fb,
                            step_s=STEP_MODES[step_mode])
            cpu = time.process_time() - t0
            p, r, f1 = pair_scores(single, g)
            tg = truth_scores(truth, g)
            st = g.stats
            label = f"{method} {mode}, {step_mode}" + ("" if fb else ", no span control")
            n = len(alerts)
            rows.append([sname, label, k, p, r, f1, tg["ac1"] - ts["ac1"], tg["ac1"],
                         tg["pair_f1"], tg["incidents"], st["cross_domain_incidents"],
                         1000 * st["summaries"] / n, st["merge_us_per_summary"], f"{cpu:.1f}"])
            rec = {"storm": sname, "method": method, "mode": mode, "span_feedback": fb, "k": k,
                   "steps": step_mode, "alerts": n, "pair_p": p, "pair_r": r, "pair_f1": f1,
                   "floor_f1": floor, "single_ac1": ts["ac1"], "single_truth_f1": ts["pair_f1"],
                   "ac1": tg["ac1"], "truth_f1": tg["pair_f1"], **{
                       x: st[x] for x in st if x not in ("example",)}}
            out.setdefault("quality", []).append(rec)
            if mode == "mirror" and fb and method == RECOMMENDED:
                best[(step_mode, k)] = (f1, tg["ac1"] - ts["ac1"], tg["pair_f1"] - ts["pair_f1"])
                costs.append([sname, step_mode, k, 1000 * st["incident_events"] / n,
                              1000 * st["summaries"] / n, st["summary_bytes_mean"],
                              st["summary_bytes_max"], 1000 * st["merger"]["lookups"] / n,
                              st["merger"]["merges"], st["span_controls"],
                              st["merge_us_per_summary"], st["merge_us_per_event"],
                              st["peak_state"]["incidents"],
                              st["peak_state"]["svc_index_entries"]])
            if st["example"] and "example" not in out and k == 2:
                out["example"] = st["example"]
        summary.append([sname, f"{floor:.3f}"] + [
            "{:.3f} / {:+.2f} / {:+.2f}".format(*best[(m, k)])
            for m in STEP_MODES for k in (2, 4, 8)])
    table("Quality: partitioned + merged grouping vs the single-domain grouping of the same "
          "storm (pair P/R/F1), and vs ground truth (AC@1 and its change, pair F1)",
          ["storm", "variant", "K", "P vs single", "R vs single", "F1 vs single",
           "AC@1 change", "AC@1 truth", "F1 truth", "incidents", "merged across domains",
           "summaries / 1k alerts", "merge us / summary", "run CPU s"], rows)
    table("Summary (recommended: louvain + mirror merge): F1 vs single / AC@1 change / "
          "truth pair-F1 change", ["storm", "floor"] + [f"{m} K={k}" for m in STEP_MODES
                                                        for k in (2, 4, 8)], summary)
    table("Merge-stage load and state (recommended variant)",
          ["storm", "steps", "K", "incident events / 1k alerts", "summaries / 1k alerts",
           "summary bytes mean", "summary bytes max", "lookups / 1k alerts", "merges",
           "controls", "us / summary", "us / incident event", "peak incidents held",
           "peak index entries"], costs)


def scale(out: dict) -> None:
    """A 10,000-service connected topology, 100,000-alert bench storm, K = 16 and 64."""
    b = bench_topology(10_000, components=1)
    alerts, truth = labelled_storm(b, 100_000)
    single = single_domain(b, alerts)
    ts = truth_scores(truth, single)
    rows = [["single domain", "-", "-", "", "", "", ts["ac1"], ts["pair_f1"], ts["incidents"],
             "", f"{single.stats['cpu_s']:.1f}"]]
    for k in (16, 64):
        t0 = time.perf_counter()
        dom = domain_map(b.name, partition(b.graph, k, RECOMMENDED))
        pt = time.perf_counter() - t0
        for step_mode in STEP_MODES:
            t0 = time.process_time()
            g = partitioned(b, alerts, dom, step_s=STEP_MODES[step_mode])
            cpu = time.process_time() - t0
            p, r, f1 = pair_scores(single, g)
            tg = truth_scores(truth, g)
            rows.append([f"{RECOMMENDED} mirror (partition {pt:.1f} s)", k, step_mode, p, r, f1,
                         tg["ac1"], tg["pair_f1"], tg["incidents"],
                         f"{g.stats['merge_us_per_summary']:.0f}", f"{cpu:.1f}"])
            out.setdefault("scale", []).append(
                {"k": k, "steps": step_mode, "pair_p": p, "pair_r": r, "pair_f1": f1,
                 "ac1": tg["ac1"], "truth_f1": tg["pair_f1"], "single_ac1": ts["ac1"],
                 "single_truth_f1": ts["pair_f1"], **{x: g.stats[x] for x in g.stats
                                                      if x != "example"}})
    table("Scale: 10,000-service connected topology, 100,000-alert storm",
          ["variant", "K", "steps", "P vs single", "R vs single", "F1 vs single", "AC@1 truth",
           "F1 truth", "incidents", "merge us / summary", "run CPU s"], rows)


def merge_cost(out: dict) -> None:
    """The merge stage alone over a recorded summary stream, best of 3 (CPU time)."""
    import run as runmod

    rows = []
    b = bench_topology(1000, components=1)
    cases = [("bench-1000 dense 100k", b, labelled_storm(b, 100_000)[0]),
             ("bench-1000 sparse 30k", b, labelled_storm(b, 30_000, fault_every_s=300)[0])]
    for sname, topo, alerts in cases:
        for k in (2, 8):
            dom = domain_map(topo.name, partition(topo.graph, k, RECOMMENDED))
            captured: list = []
            runmod.partitioned(topo, alerts, dom, capture=captured)
            ptopo = Topology(name=topo.name, graph=topo.graph)
            ptopo._domain_of.clear()
            ptopo._domain_of.update(dom)
            best = float("inf")
            lookups = 0
            for _ in range(3):
                m = Merger(ptopo)
                t0 = time.process_time()
                for kind, x in captured:
                    if kind == "batch":
                        m.on_batch(x)
                    else:
                        m.advance(x)
                m.finish()
                best = min(best, time.process_time() - t0)
                lookups = m.stats["lookups"]
            n_sum = sum(len(x) for kind, x in captured if kind == "batch")
            rows.append([sname, k, n_sum, lookups, 1e6 * best / n_sum,
                         1e6 * best / max(1, lookups), n_sum / best, len(alerts) / best])
            out.setdefault("merge_cost", []).append(
                {"storm": sname, "k": k, "summaries": n_sum, "lookups": lookups,
                 "us_per_summary": 1e6 * best / n_sum,
                 "summaries_per_s": n_sum / best, "alerts_per_s": len(alerts) / best})
    table("Merge stage alone on a recorded summary stream (one core, CPU time, best of 3)",
          ["storm", "K", "summaries", "service lookups", "us / summary", "us / lookup",
           "summaries / s", "storm alerts / s it keeps up with"], rows)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", choices=["partition", "quality", "cost", "scale"])
    ap.add_argument("--digest", nargs=3)
    a = ap.parse_args()
    if a.digest:
        print(_digest(a.digest[0], int(a.digest[1]), a.digest[2] == "1"))
        return 0
    out: dict = {}
    print(f"# stormwatch partition bench, snapshot {(HERE / 'snap' / 'COMMIT').read_text().strip()[:7]}"
          f", {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    t0 = time.time()
    if a.only in (None, "partition"):
        part_tables(a.quick, out)
        determinism(out)
        stability(out)
    if a.only in (None, "quality"):
        quality(a.quick, out)
    if a.only in (None, "cost"):
        merge_cost(out)
    if a.only == "scale" or (a.only is None and not a.quick):
        scale(out)
    if "example" in out:
        print("\nExample explanation of a cross-domain merge:\n\n```\n" + out["example"] + "\n```")
    print(f"\n(total {time.time() - t0:.0f} s)")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
