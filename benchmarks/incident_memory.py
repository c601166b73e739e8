"""One incident absorbing a storm: time per alert and memory of one correlator, bounded by
``max_members`` (default 10,000) and unbounded (``max_members=0``).

The storm (:func:`single_incident_storm`): ``--alerts`` firing alerts (1,000,000 by default),
each a new series (its own ``pod``), round-robin over a small connected topology where every
service depends on the database, all within ``--span-s`` (3,000 s, under ``max_span_s``), so
they join one incident; every other alert resolves 40 alerts later; ``instance`` labels (a
link label) take 997 values. The correlator is driven as the worker drives it: ``advance`` on
the event clock every second, ``process`` per alert, the membership journal taken (and
dropped: the worker writes it to Redis) every 1,000 events. Each mode runs in its own process,
so its RSS is its own.

Printed per quarter of the storm: CPU seconds so far, µs per event (firing or resolved) over
the quarter, RSS now and the process's peak, the interpreter's live allocated blocks, the
members the incident holds and counts; with ``--tracemalloc`` the traced memory now and its
peak over the quarter (tracemalloc makes the correlator about 8 times slower, so it is off by
default).

Usage: ``python -m benchmarks.incident_memory [--alerts N] [--max-members M ...]
[--tracemalloc] [--json PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pipeline.domain.correlate import CorrelationSettings, Correlator
from pipeline.domain.schemas import Alert, AlertStatus, Severity
from pipeline.domain.topology import Topology

T0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()

#: a shop: every service reaches the database within two calls
TOPOLOGY = Topology.from_edges(
    "shop",
    [
        ("frontend", "checkout"),
        ("frontend", "cart"),
        ("frontend", "search"),
        ("checkout", "payment"),
        ("checkout", "db"),
        ("payment", "db"),
        ("cart", "db"),
        ("search", "db"),
    ],
)
SERVICES = ["db", "payment", "checkout", "cart", "search", "frontend"]
NAMES = ["CPUSaturation", "ErrorRateHigh", "HighLatencyP99"]
RESOLVE_AFTER = 40  # alerts


def _alert(i: int, t: float, status: AlertStatus) -> Alert:
    return Alert(
        id=f"{'a' if status is AlertStatus.firing else 'r'}{i}",
        source="bench",
        service=SERVICES[i % len(SERVICES)],
        name=NAMES[i % len(NAMES)],
        severity=Severity.critical if i % 5 == 0 else Severity.warning,
        status=status,
        timestamp=datetime.fromtimestamp(t, UTC),
        labels={"pod": f"p{i}", "instance": f"h{i % 997}"},
    )


def single_incident_storm(alerts: int, span_s: float = 3000.0) -> Iterator[Alert]:
    """``alerts`` firing alerts (every one a new series) in event-time order within
    ``span_s``, every other one resolved ``RESOLVE_AFTER`` alerts later (see module doc)."""
    step = span_s / max(1, alerts)
    for i in range(alerts):
        t = T0 + i * step
        yield _alert(i, t, AlertStatus.firing)
        j = i - RESOLVE_AFTER
        if j >= 0 and j % 2 == 0:
            yield _alert(j, t, AlertStatus.resolved)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(alerts: int, max_members: int, traced: bool = False) -> dict[str, Any]:
    """Drive one correlator through the storm; figures at every quarter (see module doc)."""
    c = Correlator(TOPOLOGY, CorrelationSettings(max_members=max_members))
    marks = {alerts * k // 4 for k in range(1, 5)}
    rows: list[dict[str, Any]] = []
    if traced:
        tracemalloc.start()
    joined = 0
    last_cpu = time.process_time()
    start_cpu = last_cpu
    last_events = 0
    ticked = float("-inf")
    for events, a in enumerate(single_incident_storm(alerts), 1):
        if a.epoch - ticked >= 1.0:
            ticked = a.epoch
            c.advance(a.epoch)
        c.process(a)
        if events % 1000 == 0:
            c.take_membership()
        if a.status is AlertStatus.firing:
            joined += 1
            if joined in marks:
                now = time.process_time()
                states = list(c.book.states.values())
                big = max(states, key=lambda st: st.inc.alert_count)
                row = {
                    "alerts": joined,
                    "events": events,
                    "cpu_s": round(now - start_cpu, 2),
                    "us_per_event": round((now - last_cpu) / (events - last_events) * 1e6, 1),
                    "rss_mb": round(_rss_mb(), 1),
                    "peak_rss_mb": round(_peak_rss_mb(), 1),
                    "allocated_blocks": sys.getallocatedblocks(),
                    "incidents": len(states),
                    "alert_count": big.inc.alert_count,
                    "members_held": len(big.members),
                    "series_tracked": len(big.fp_last),
                    "book_series": len(c.book.series),
                }
                if traced:
                    cur, peak = tracemalloc.get_traced_memory()
                    row["traced_mb"] = round(cur / 2**20, 1)
                    row["traced_peak_mb"] = round(peak / 2**20, 1)
                    tracemalloc.reset_peak()
                rows.append(row)
                last_cpu = time.process_time()
                last_events = events
    if traced:
        tracemalloc.stop()
    return {"max_members": max_members, "traced": traced, "rows": rows}


def _child(alerts: int, max_members: int, traced: bool) -> dict[str, Any]:
    """:func:`measure` in a fresh process (its RSS is its own)."""
    cmd = [sys.executable, "-m", "benchmarks.incident_memory", "--child"]
    cmd += ["--alerts", str(alerts), "--max-members", str(max_members)]
    if traced:
        cmd.append("--tracemalloc")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--alerts", type=int, default=1_000_000, help="firing alerts in the storm")
    p.add_argument(
        "--max-members",
        type=int,
        nargs="+",
        default=[CorrelationSettings().max_members, 0],
        help="the bounds to compare (0: unbounded)",
    )
    p.add_argument("--tracemalloc", action="store_true", help="trace memory (much slower)")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.alerts, args.max_members[0], args.tracemalloc)))
        return 0
    console = Console(width=150)
    results = []
    for mm in args.max_members:
        console.print(f"max_members={mm or 'unbounded'}: {args.alerts:,} alerts ...")
        results.append(_child(args.alerts, mm, args.tracemalloc))
    table = Table(title=f"One incident absorbing {args.alerts:,} alerts (one correlator)")
    cols = ["max_members", "alerts", "CPU s", "µs/event", "RSS MiB", "peak RSS MiB"]
    cols += ["alloc. blocks", "held", "counted", "book series"]
    if args.tracemalloc:
        cols += ["traced MiB", "traced peak MiB"]
    for col in cols:
        table.add_column(col, justify="right")
    for res in results:
        for r in res["rows"]:
            cells = [
                f"{res['max_members']:,}" if res["max_members"] else "unbounded",
                f"{r['alerts']:,}",
                f"{r['cpu_s']:.1f}",
                f"{r['us_per_event']:.1f}",
                f"{r['rss_mb']:.0f}",
                f"{r['peak_rss_mb']:.0f}",
                f"{r['allocated_blocks']:,}",
                f"{r['members_held']:,}",
                f"{r['alert_count']:,}",
                f"{r['book_series']:,}",
            ]
            if args.tracemalloc:
                cells += [f"{r['traced_mb']:.1f}", f"{r['traced_peak_mb']:.1f}"]
            table.add_row(*cells)
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps({"alerts": args.alerts, "modes": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
