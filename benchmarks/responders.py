"""``make bench-responders``: does the recommender name who will actually resolve?

For each run (a topology, a seed, a maximum team size) a simulated company
(:mod:`benchmarks.responders_company`) lives through a year of incidents
(:mod:`benchmarks.responders_sim`). Each incident, in time order, is given to the
recommender with the directory as the worker would see it; the top recommendation is paged.
The resolution (with its resolver) arrives when the incident is resolved, and only then does
the recommender learn from it. Next to it, two baselines: the primary on call of the team
owning the reported root cause, and the most frequent past resolver of that service.

Figures: top-1 / top-3 (the resolver is first / among the first three), per 30 days and
after the first 30 days; ``offcall_pages`` (top recommendations to people not on call,
must be 0); ``reassignment_rate`` (pages the paged person had to hand on: 1 - top-1);
``gini`` of pages per person (0: spread evenly) next to the primary baseline's;
``ms_per_incident`` (CPU time of one recommendation, mean and p99, on this thread: the
machine is shared, so wall time is given too; a learning step separately). Timelines are
computed when the directory is loaded (``OnCallView.prepare``), as the worker does, and
their cost is reported per schedule-day.
"""

from __future__ import annotations

import argparse
import heapq
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import ROOT
from benchmarks.responders_company import build
from benchmarks.responders_sim import SimIncident, incidents
from pipeline.domain.oncall.recommend import Recommender, RecommendSettings
from pipeline.domain.oncall.recommend_load import gini
from pipeline.domain.oncall.recommend_oncall import OnCallView

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
TOPOLOGIES = ("online-boutique", "deathstarbench-media", "deathstarbench-social-network")
BUCKET = timedelta(days=30)
ARMS = ("top1", "top3", "baseline_oncall_top1", "baseline_frequent_top1")


@dataclass
class Run:
    topology: str
    seed: int
    max_team: int
    people: int = 0
    teams: int = 0
    buckets: dict[int, Counter[str]] = field(default_factory=dict)
    offcall_pages: int = 0
    baseline_frequent_offcall: int = 0
    pages: Counter[str] = field(default_factory=Counter)
    primary_pages: Counter[str] = field(default_factory=Counter)
    recommend_ms: list[float] = field(default_factory=list)
    recommend_wall_ms: list[float] = field(default_factory=list)
    learn_ms: list[float] = field(default_factory=list)
    prepare_s: float = 0.0
    schedule_days: int = 0

    def first_bucket_rate(self, arm: str) -> float:
        """The rate over the first 30 days (before much feedback)."""
        first = self.buckets.get(0, Counter())
        return first[arm] / first["n"] if first["n"] else 0.0

    def rate(self, arm: str, first_bucket: int = 1) -> float:
        n = sum(c["n"] for b, c in self.buckets.items() if b >= first_bucket)
        hits = sum(c[arm] for b, c in self.buckets.items() if b >= first_bucket)
        return hits / n if n else 0.0


def simulate(
    topology: str, seed: int, max_team: int, days: int, per_day: float, load_penalty: float
) -> Run:
    company = build(ROOT / "topologies" / f"{topology}.yaml", seed, max_team, START, days)
    run = Run(topology, seed, max_team, len(company.directory.people), len(company.members))
    view = OnCallView(company.directory)
    t0 = time.thread_time()
    view.prepare(START - timedelta(days=1), START + timedelta(days=days + 1))
    run.prepare_s = time.thread_time() - t0
    run.schedule_days = len(company.directory.schedules) * (days + 2)
    rec = Recommender(RecommendSettings(load_penalty=load_penalty))
    neighbours = company.neighbours
    pending: list[tuple[datetime, int, SimIncident]] = []
    resolved_by: dict[str, Counter[str]] = {}
    for i, inc in enumerate(incidents(company, seed, START, days, per_day)):
        while pending and pending[0][0] <= inc.summary.at:
            _, _, done = heapq.heappop(pending)
            t0 = time.thread_time()
            rec.learn(done.summary, done.resolver, view, neighbours)
            run.learn_ms.append((time.thread_time() - t0) * 1000)
            reported = done.summary.root_cause or ""
            resolved_by.setdefault(reported, Counter())[done.resolver] += 1
        t0, w0 = time.thread_time(), time.perf_counter()
        ranked = rec.recommend(inc.summary, view, neighbours)
        run.recommend_ms.append((time.thread_time() - t0) * 1000)
        run.recommend_wall_ms.append((time.perf_counter() - w0) * 1000)
        people = [r.person for r in ranked]
        bucket = run.buckets.setdefault(int((inc.summary.at - START) / BUCKET), Counter())
        bucket["n"] += 1
        bucket["top1"] += people[:1] == [inc.resolver]
        bucket["top3"] += inc.resolver in people[:3]
        bucket["baseline_oncall_top1"] += inc.primary == inc.resolver
        past = resolved_by.get(inc.summary.root_cause or "")
        frequent = past.most_common(1)[0][0] if past else None
        bucket["baseline_frequent_top1"] += frequent == inc.resolver
        run.baseline_frequent_offcall += frequent is not None and frequent not in inc.on_call
        if people:
            run.pages[people[0]] += 1
            run.offcall_pages += people[0] not in inc.on_call
            rec.note_paged(people[0], inc.summary.at)
        if inc.primary:
            run.primary_pages[inc.primary] += 1
        heapq.heappush(pending, (inc.resolved_at, i, inc))
    everyone = list(company.directory.people)
    run.pages.update(dict.fromkeys(everyone, 0))
    run.primary_pages.update(dict.fromkeys(everyone, 0))
    return run


def summarise(runs: list[Run]) -> dict[str, Any]:
    def spread(values: list[float]) -> dict[str, float]:
        return {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}

    rec_ms = [ms for r in runs for ms in r.recommend_ms]
    learn_ms = [ms for r in runs for ms in r.learn_ms]
    months = sorted({b for r in runs for b in r.buckets})
    over_time = []
    for b in months:
        n = sum(r.buckets[b]["n"] for r in runs if b in r.buckets)
        row: dict[str, Any] = {"day": b * BUCKET.days, "incidents": n}
        for arm in ARMS:
            row[arm] = sum(r.buckets[b][arm] for r in runs if b in r.buckets) / max(n, 1)
        over_time.append(row)
    per_run = [
        {
            "topology": r.topology,
            "seed": r.seed,
            "max_team": r.max_team,
            "teams": r.teams,
            "people": r.people,
            "incidents": sum(c["n"] for c in r.buckets.values()),
            **{arm: round(r.rate(arm), 4) for arm in ARMS},
            "first_30_days_top1": round(r.first_bucket_rate("top1"), 4),
            "offcall_pages": r.offcall_pages,
            "gini": round(gini(r.pages.values()), 4),
            "gini_primary_baseline": round(gini(r.primary_pages.values()), 4),
        }
        for r in runs
    ]
    fig: dict[str, Any] = {arm: statistics.fmean(r.rate(arm) for r in runs) for arm in ARMS}
    fig.update(
        {
            "offcall_pages": sum(r.offcall_pages for r in runs),
            "baseline_frequent_offcall_pages": sum(r.baseline_frequent_offcall for r in runs),
            "ms_per_incident": statistics.fmean(rec_ms),
            "ms_per_incident_p99": statistics.quantiles(rec_ms, n=100)[98],
            "wall_ms_per_incident": statistics.fmean(
                ms for r in runs for ms in r.recommend_wall_ms
            ),
            "ms_per_learning_step": statistics.fmean(learn_ms),
            "timeline_ms_per_schedule_day": 1000
            * sum(r.prepare_s for r in runs)
            / sum(r.schedule_days for r in runs),
            "gini": statistics.fmean(gini(r.pages.values()) for r in runs),
            "gini_primary_baseline": statistics.fmean(gini(r.primary_pages.values()) for r in runs),
            "reassignment_rate": 1.0 - statistics.fmean(r.rate("top1") for r in runs),
            "spread": {arm: spread([r.rate(arm) for r in runs]) for arm in ARMS},
            "over_time": over_time,
            "runs": per_run,
            "after_days": BUCKET.days,
        }
    )
    return fig


def _rates(row: dict[str, Any]) -> list[str]:
    return [f"{row[arm]:.3f}" for arm in ARMS]


def show(fig: dict[str, Any], console: Console) -> None:
    runs = Table(title="runs (after the first 30 days of feedback)")
    for col in (
        "topology",
        "seed",
        "team<=",
        "people",
        "top1",
        "top3",
        "oncall",
        "frequent",
        "off-call",
        "gini",
        "gini primary",
    ):
        runs.add_column(col)
    for r in fig["runs"]:
        runs.add_row(
            r["topology"],
            str(r["seed"]),
            str(r["max_team"]),
            str(r["people"]),
            *_rates(r),
            str(r["offcall_pages"]),
            f"{r['gini']:.3f}",
            f"{r['gini_primary_baseline']:.3f}",
        )
    console.print(runs)
    months = Table(title="over time (all runs pooled)")
    for col in ("from day", "incidents", "top1", "top3", "oncall top1", "frequent top1"):
        months.add_column(col)
    for row in fig["over_time"]:
        months.add_row(str(row["day"]), str(row["incidents"]), *_rates(row))
    console.print(months)
    s = fig["spread"]
    console.print(
        f"top-1 {fig['top1']:.3f} [{s['top1']['min']:.3f}-{s['top1']['max']:.3f}]  "
        f"top-3 {fig['top3']:.3f} [{s['top3']['min']:.3f}-{s['top3']['max']:.3f}]  "
        f"baselines: on-call primary {fig['baseline_oncall_top1']:.3f}, most frequent "
        f"resolver {fig['baseline_frequent_top1']:.3f}  off-call pages {fig['offcall_pages']} "
        f"(frequent baseline: {fig['baseline_frequent_offcall_pages']})  "
        f"{fig['ms_per_incident']:.3f} ms/incident CPU (p99 {fig['ms_per_incident_p99']:.3f}, "
        f"wall {fig['wall_ms_per_incident']:.3f}), "
        f"learn {fig['ms_per_learning_step']:.3f} ms, timelines "
        f"{fig['timeline_ms_per_schedule_day']:.2f} ms per schedule-day  gini {fig['gini']:.3f} "
        f"(primary baseline {fig['gini_primary_baseline']:.3f})  "
        f"reassignment {fig['reassignment_rate']:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.responders", description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--topologies", nargs="+", default=list(TOPOLOGIES))
    ap.add_argument(
        "--team-sizes",
        type=int,
        nargs="+",
        default=[5, 7, 9],
        help="largest team of a run; cycled over the runs",
    )
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--per-day", type=float, default=6.0, help="incidents per day (mean)")
    ap.add_argument(
        "--load-penalty",
        type=float,
        default=RecommendSettings().load_penalty,
        help="score / (1 + penalty x pages in the last 24 h)",
    )
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    console = Console(width=150)
    runs: list[Run] = []
    k = 0
    for topology in args.topologies:
        for seed in args.seeds:
            size = args.team_sizes[k % len(args.team_sizes)]
            k += 1
            started = time.perf_counter()
            runs.append(simulate(topology, seed, size, args.days, args.per_day, args.load_penalty))
            console.print(
                f"{topology} seed {seed} team<={size}: top-1 {runs[-1].rate('top1'):.3f} "
                f"({time.perf_counter() - started:.1f} s)"
            )
    fig = summarise(runs)
    fig["args"] = {k: v for k, v in vars(args).items() if k != "json"}
    show(fig, console)
    if args.json:
        args.json.write_text(json.dumps(fig, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
