"""``make bench-feedback``: does learning from verdicts stop noise from paging people?

A prequential replay of ``rca-dev`` (alerts in event-time order through the same stage chain
as the worker: dedup -> score -> correlate -> annotate). A verdict arrives for every incident
``--delay-min`` minutes after it resolves: ``actionable`` when it holds an alert of an injected
fault, ``noise`` when it is made only of background alerts. The same stream is replayed twice,
without and with feedback learning, and for each quarter of the stream (by alert time) the
bench prints the pages, noise pages, pages per fault and missed faults of each arm.

An incident *pages* when any of its published changes carries ``page = True``; a fault is
*missed* when it has firing alerts but none of them is in an incident that paged.
"""

from __future__ import annotations

import argparse
import heapq
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import FIXTURES
from pipeline.domain.schemas import (
    Alert,
    AlertStatus,
    Feedback,
    FeedbackAction,
    Incident,
    IncidentEvent,
    IncidentStatus,
    Verdict,
)
from pipeline.domain.scoring import AlertScorer, ScoringSettings

DEFAULT_DIR = FIXTURES / "rca-dev"
SYSTEM = "online-boutique"
TICK_S = 5.0  # lifecycle clock step of the replay (the worker ticks every second)


@dataclass
class ArmResult:
    name: str
    paged: set[str] = field(default_factory=set)  # incident ids that paged
    members: dict[str, set[str]] = field(default_factory=dict)  # incident -> alert ids
    opened_at: dict[str, float] = field(default_factory=dict)
    paged_at: dict[str, float] = field(default_factory=dict)  # first event with page = True
    updates: int = 0


def _load(data_dir: Path) -> tuple[list[Alert], dict[str, str | None], dict[str, float]]:
    from pipeline.offline.replay import read_alerts

    alerts = list(read_alerts(data_dir / f"{SYSTEM}.alerts.jsonl"))
    truth = json.loads((data_dir / f"{SYSTEM}.truth.json").read_text())
    alert_fault: dict[str, str | None] = truth["alert_fault"]
    from datetime import datetime

    inject = {
        f["fault_id"]: datetime.fromisoformat(f["inject_time"].replace("Z", "+00:00")).timestamp()
        for f in truth["faults"]
    }
    return alerts, alert_fault, inject


def truth_verdict(alert_ids: Iterable[str], alert_fault: Mapping[str, str | None]) -> Verdict:
    """The verdict the truth gives an incident: ``actionable`` when it holds an alert of an
    injected fault, ``noise`` when it is made only of background alerts."""
    return Verdict.actionable if any(alert_fault.get(a) for a in alert_ids) else Verdict.noise


def run_arm(
    name: str,
    alerts: list[Alert],
    alert_fault: dict[str, str | None],
    *,
    learn: bool,
    delay_s: float,
    data_dir: Path,
    settings: ScoringSettings | None = None,
) -> ArmResult:
    from pipeline.domain.pipeline import AlertPipeline
    from pipeline.domain.topology import Topology

    topology = Topology.load(data_dir / f"{SYSTEM}.topology.yaml")
    scorer = AlertScorer(settings)
    pipe = AlertPipeline(topology, scorer=scorer)
    dedup: dict[str, str | None] = {}
    res = ArmResult(name)
    pending: list[tuple[float, int, str]] = []  # (due epoch, seq, incident id)
    scheduled: set[tuple[str, float]] = set()
    latest: dict[str, Incident] = {}
    seq = 0

    def record(events: list[IncidentEvent], now: float) -> None:
        nonlocal seq
        for ev in events:
            inc = ev.incident
            latest[inc.id] = inc
            res.members[inc.id] = set(inc.alert_ids)
            res.opened_at.setdefault(inc.id, inc.opened_at.timestamp())
            if inc.page:
                res.paged.add(inc.id)
                res.paged_at.setdefault(inc.id, now)
            if inc.status is IncidentStatus.resolved and inc.resolved_at is not None:
                key = (inc.id, inc.resolved_at.timestamp())
                if key not in scheduled:
                    scheduled.add(key)
                    seq += 1
                    heapq.heappush(pending, (key[1] + delay_s, seq, inc.id))

    def deliver(now: float) -> None:
        while pending and pending[0][0] <= now:
            _, _, iid = heapq.heappop(pending)
            inc = latest[iid]
            fb = Feedback(
                incident_id=iid,
                action=FeedbackAction.verdict,
                verdict=truth_verdict(inc.alert_ids, alert_fault),
                timestamp=inc.updated_at + timedelta(seconds=delay_s),
                user="bench",
            )
            if learn:
                res.updates += len(scorer.learn(inc, fb))

    next_tick: float | None = None
    for alert in alerts:
        t = alert.epoch
        if next_tick is None:
            next_tick = t + TICK_S
        while next_tick <= t:  # the lifecycle clock runs between alerts too
            deliver(next_tick)
            record(pipe.tick(next_tick), next_tick)
            next_tick += TICK_S
        out = pipe.process([alert], dedup)
        dedup.update(out.dedup_states)
        record(out.events, t)
    end = alerts[-1].epoch + 86400.0
    while next_tick is not None and next_tick <= alerts[-1].epoch + 3600.0:
        deliver(next_tick)
        record(pipe.tick(next_tick), next_tick)
        next_tick += TICK_S
    deliver(end)
    record(pipe.tick(end), end)
    return res


def summarise(
    arm: ArmResult,
    alerts: list[Alert],
    alert_fault: dict[str, str | None],
    start: float,
    end: float,
) -> dict[str, float]:
    """Pages, noise pages, faults with alerts, pages per fault, missed faults in [start, end)."""
    fault_alerts: dict[str, set[str]] = {}
    for a in alerts:
        f = alert_fault.get(a.id)
        if a.status is AlertStatus.firing and f and start <= a.epoch < end:
            fault_alerts.setdefault(f, set()).add(a.id)
    in_range = [i for i, t in arm.opened_at.items() if start <= t < end]
    pages = [i for i in in_range if i in arm.paged]
    noise = [i for i in pages if not any(alert_fault.get(a) for a in arm.members[i])]
    paged_alerts: set[str] = set()
    for i in arm.paged:
        paged_alerts |= arm.members[i]
    missed = [f for f, ids in fault_alerts.items() if not ids & paged_alerts]
    fault_pages = len(pages) - len(noise)
    delays = sorted(arm.paged_at[i] - arm.opened_at[i] for i in pages if i not in noise)
    return {
        "delay_s": delays[len(delays) // 2] if delays else 0.0,
        "incidents": len(in_range),
        "pages": len(pages),
        "noise": len(noise),
        "faults": len(fault_alerts),
        "pages_per_fault": fault_pages / len(fault_alerts) if fault_alerts else 0.0,
        "missed": len(missed),
    }


def scoring_cost_us(alerts: list[Alert], rounds: int = 5) -> float:
    """Microseconds per ``AlertScorer.score`` call on a fresh scorer, best of ``rounds``."""
    best = float("inf")
    for _ in range(rounds):
        scorer = AlertScorer()
        started = time.perf_counter()
        for alert in alerts:
            scorer.score(alert)
        best = min(best, (time.perf_counter() - started) / len(alerts))
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.feedback", description=__doc__)
    ap.add_argument("--data", type=Path, default=DEFAULT_DIR, help="rca-dev directory")
    ap.add_argument("--delay-min", type=float, default=5.0, help="verdict delay after resolve")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    console = Console(width=120)
    alerts, alert_fault, _ = _load(args.data)
    delay_s = args.delay_min * 60.0
    arms = [
        run_arm(
            "no learning", alerts, alert_fault, learn=False, delay_s=delay_s, data_dir=args.data
        ),
        run_arm("feedback", alerts, alert_fault, learn=True, delay_s=delay_s, data_dir=args.data),
    ]
    firing = [a for a in alerts if a.status is AlertStatus.firing]
    cuts = [firing[len(firing) * k // 4].epoch for k in range(4)] + [alerts[-1].epoch + 1]
    table = Table(title=f"rca-dev prequential replay, verdict {args.delay_min:g} min after resolve")
    cols = ("incidents", "pages", "noise pages", "pages/fault", "missed", "median delay s")
    for col in ("stream part", "arm", *cols):
        table.add_column(col, justify="left" if col in ("stream part", "arm") else "right")
    parts = [(f"Q{k + 1}", cuts[k], cuts[k + 1]) for k in range(4)]
    parts += [("1st half", cuts[0], cuts[2]), ("2nd half", cuts[2], cuts[4])]
    halves: dict[str, dict[str, float]] = {}
    by_part: list[dict[str, object]] = []
    for label, lo, hi in parts:
        for arm in arms:
            s = summarise(arm, alerts, alert_fault, lo, hi)
            if label == "2nd half":
                halves[arm.name] = s
            by_part.append({"part": label, "arm": arm.name, **s})
            table.add_row(
                f"{label} ({s['faults']} faults w/ alerts)",
                arm.name,
                str(s["incidents"]),
                str(s["pages"]),
                str(s["noise"]),
                f"{s['pages_per_fault']:.2f}",
                str(s["missed"]),
                f"{s['delay_s']:.0f}",
            )
    console.print(table)
    base, fb = halves["no learning"], halves["feedback"]
    drop = 1.0 - fb["noise"] / base["noise"] if base["noise"] else 0.0
    extra_missed = fb["missed"] - base["missed"]
    console.print(
        f"2nd half: noise pages {base['noise']:.0f} -> {fb['noise']:.0f} "
        f"({100 * drop:.0f}% fewer; target >= 50%), missed faults {base['missed']:.0f} -> "
        f"{fb['missed']:.0f} ({extra_missed:+.0f}; target +0); model updates: {arms[1].updates}"
    )
    cost_us = scoring_cost_us(alerts)
    console.print(
        f"scoring cost: {cost_us:.1f} µs per alert (AlertScorer.score over the rca-dev alerts, "
        "best of 5; target < 100)"
    )
    ok = drop >= 0.5 and extra_missed <= 0 and cost_us < 100
    console.print("targets met" if ok else "targets NOT met")
    if args.json:
        figures = {
            "delay_min": args.delay_min,
            "parts": by_part,
            "second_half": {
                "noise_pages": [base["noise"], fb["noise"]],
                "noise_drop": drop,
                "missed_faults": [base["missed"], fb["missed"]],
                "model_updates": arms[1].updates,
            },
            "scoring_cost_us": cost_us,
            "targets_met": ok,
        }
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
