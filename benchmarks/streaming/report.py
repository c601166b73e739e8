"""Results of the streaming bench: the ``make bench`` table, the ``make bench-latency`` table,
and the figures as JSON (``--json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from benchmarks.streaming.backlog import SPLIT_ROLES, Run
from benchmarks.streaming.console import console
from benchmarks.streaming.memory import mb, memory_note
from pipeline.config import WorkerSettings


def _r(x: float) -> str:
    return f"{x:,.0f}/s"


def report(fig: dict[str, Any]) -> None:
    """The ``make bench`` table: every figure of a full run next to its target, then the notes."""
    run1: Run = fig["pipeline"]
    tr = fig["transport"]
    nan = {"rate": float("nan")}  # a ceiling that was skipped or failed
    fc, ff = fig["faust_consume"] or nan, fig["faust_forward"] or nan
    lat = fig.get("latency") or {}
    am = fig.get("alertmanager")
    table = Table(title=f"stormwatch throughput ({fig['cpu']} cores, one Tansu broker, one Redis)")
    table.add_column("measure")
    table.add_column("figure", justify="right")
    table.add_column("target / note")
    table.add_row("alert size (mean JSON)", f"{fig['alert_bytes']:.0f} B", "")
    table.add_row("transport: confluent-kafka produce", _r(tr["produce"]), "")
    table.add_row("transport: confluent-kafka consume", _r(tr["consume"]), "")
    table.add_row("Faust: consume only (take_events 500)", _r(fc["rate"]), "worker settings")
    table.add_row("Faust: consume + produce", _r(ff["rate"]), "worker settings")
    done = "" if run1.finished else f" ({run1.processed:,.0f} of {run1.alerts:,} in budget)"
    if run1.stalled:
        done = f" (STALLED after {run1.processed:,.0f} of {run1.alerts:,})"
    ok = "met" if run1.rate >= 20_000 else "NOT met"
    table.add_row(
        "pipeline, 1 worker",
        _r(run1.rate),
        f">= 20,000/s: {ok}; {run1.processed:,.0f} alerts" + done,
    )
    if run1.cores:
        table.add_row(
            "  CPU cores used during the run",
            f"{sum(run1.cores.values()):.2f}",
            ", ".join(f"{k} {v:.2f}" for k, v in run1.cores.items()),
        )
    if lat:
        ok = "met" if lat["hist_p99"] < 0.1 else "NOT met"
        table.add_row("  latency at half max rate", _r(lat["rate"]), "paced producer")
        table.add_row(
            "  processing p50 / p99",
            f"{lat['hist_p50'] * 1e3:.0f} / {lat['hist_p99'] * 1e3:.0f} ms",
            f"< 100 ms: {ok}; alerts.raw arrival -> its correlate step published (worker "
            f"histogram, {lat['hist_count']:,.0f} alerts, {lat['hist_over_5s']:,.0f} > 5 s)"
            + _broker_note(lat),
        )
        faust_floor = fig.get("faust_latency")
        if faust_floor:
            table.add_row(
                "  Faust floor p50 / p99, 2 hops",
                f"{faust_floor['p50'] * 1e3:.0f} / {faust_floor['p99'] * 1e3:.0f} ms",
                f"Faust relay at {faust_floor['rate']:,.0f}/s, worker settings: produce -> topic "
                "-> agent -> batch message -> topic -> agent, the pipeline's two hops with no "
                f"work; pipeline p99 / Faust floor p99 = "
                f"{lat['hist_p99'] / faust_floor['p99']:.2f}x" + _broker_note(faust_floor),
            )
        floor = fig.get("transport_latency")
        if floor:
            table.add_row(
                "  transport floor p50 / p99, 1 hop | 2 hops",
                f"{floor['one_hop_p50'] * 1e3:.0f} / {floor['one_hop_p99'] * 1e3:.0f} | "
                f"{floor['p50'] * 1e3:.0f} / {floor['p99'] * 1e3:.0f} ms",
                f"raw confluent-kafka at {floor['rate']:,.0f}/s: produce -> topic -> relay -> "
                "topic -> consume, the two hops through raw clients; pipeline p99 / floor "
                f"p99 = {lat['hist_p99'] / floor['p99']:.2f}x" + _broker_note(floor),
            )
        table.add_row(
            "  produce -> first incident event p50 / p95 / p99",
            f"{lat['p50'] * 1e3:.0f} / {lat['p95'] * 1e3:.0f} / {lat['p99'] * 1e3:.0f} ms",
            f"includes the deliberate <= {WorkerSettings().update_interval_s:g} s rate limit "
            f"of `updated` events; {lat['measured']:,} of {lat['paced']:,} alerts in an event",
        )
    table.add_row("  peak RSS of the worker", mb(run1.peak_rss[0]), memory_note(run1))
    table.add_row(
        "  Redis commands per alert",
        f"{run1.redis_cmds_per_alert:.2f}",
        ", ".join(f"{k} {v:.2f}" for k, v in run1.top_commands[:3]),
    )
    scaling: dict[str, Run] | None = fig.get("scaling")
    if scaling:
        one, two = scaling["1 worker"], scaling["2 workers"]
        factor = two.rate / one.rate if one.rate else 0.0
        ok = "met" if factor >= 1.6 else "NOT met"
        table.add_row("scaling: 1 worker", _r(one.rate), f"{one.processed:,.0f} alerts")
        table.add_row(
            "scaling: 2 workers",
            _r(two.rate),
            f"{two.processed:,.0f} alerts, RSS {', '.join(mb(x) for x in two.peak_rss)}",
        )
        table.add_row("  scaling factor", f"{factor:.2f}x", f">= 1.6x: {ok} ({fig['cpu']} cores)")
        split = scaling.get("1 worker as 2 processes")
        if split is not None:
            table.add_row(
                "1 worker as 2 processes",
                _r(split.rate),
                f"roles {' | '.join(SPLIT_ROLES)}: {split.rate / one.rate:.2f}x one process",
            )
    if am:
        table.add_row("Alertmanager 0.25 POST /api/v2/alerts", _r(am["rate"]), "group_by service")
    else:
        table.add_row("Alertmanager", "skipped", "see notes")
    ratio = run1.rate / fc["rate"]
    ok = "met" if ratio >= 0.7 else "NOT met"
    table.add_row("ratio pipeline / Faust consume ceiling", f"{ratio:.1%}", f">= 70%: {ok}")
    table.add_row(
        "ratio Faust consume / transport consume", f"{fc['rate'] / tr['consume']:.1%}", ""
    )
    table.add_row(
        "ratio Faust forward / transport produce", f"{ff['rate'] / tr['produce']:.1%}", ""
    )
    if am:
        table.add_row("ratio pipeline / Alertmanager", f"{run1.rate / am['rate']:.2f}x", "")
    console.print(table)
    for n in fig["notes"]:
        console.print(f"note: {n}")


def _broker_note(phase: dict[str, Any]) -> str:
    cores = phase.get("broker_cores")
    return "" if cores is None else f"; fresh broker, {cores:.2f} cores"


def latency_table(rows: list[dict[str, Any]], latency_s: float, notes: list[str]) -> None:
    """``make bench-latency``: pipeline, Faust floor and raw floor p50 / p99 at each rate."""
    table = Table(title=f"processing latency by rate ({latency_s:.0f} s each, fresh brokers)")
    for col in ("alerts/s", "pipeline p50 / p99", "Faust floor p50 / p99", "raw floor p50 / p99"):
        table.add_column(col, justify="right")

    def ms(d: dict[str, Any] | None, p50: str = "p50", p99: str = "p99") -> str:
        return "-" if not d else f"{d[p50] * 1e3:.0f} / {d[p99] * 1e3:.0f} ms"

    for fig in rows:
        table.add_row(
            f"{fig['latency']['rate']:,.0f}",
            ms(fig["latency"], "hist_p50", "hist_p99"),
            ms(fig.get("faust_latency")),
            ms(fig.get("transport_latency")),
        )
    console.print(table)
    for msg in notes:
        console.print(f"note: {msg}")


def write_json(path: Path, fig: dict[str, Any]) -> None:
    """The figures as JSON (``--json``); dataclasses such as :class:`Run` as their fields."""
    path.write_text(json.dumps(fig, default=lambda o: o.__dict__, indent=2))
