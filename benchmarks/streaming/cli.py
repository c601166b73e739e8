"""``python -m benchmarks.streaming`` (``make bench``, ``make bench-latency``): the options, and
the order of the phases of a full run on one broker and one Redis started here."""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import redis

import benchmarks.streaming
from benchmarks import storm as storm_mod
from benchmarks.streaming.alertmanager import alertmanager_rate
from benchmarks.streaming.backlog import pipeline_run, scaling
from benchmarks.streaming.ceilings import ceilings
from benchmarks.streaming.connected import run_storm
from benchmarks.streaming.console import log
from benchmarks.streaming.latency import check_histogram, latency_phase, latency_sweep
from benchmarks.streaming.report import report, write_json
from pipeline.app.localstack import Service, start_broker, start_redis


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.streaming",
        description=benchmarks.streaming.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--alerts", type=int, default=1_000_000, help="alerts for the full pipeline")
    p.add_argument("--quick", action="store_true", help="50,000 alerts, smaller ceilings")
    p.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="max seconds for the 1M run (default 300; 900 per run with --storm-only)",
    )
    p.add_argument("--transport", type=int, default=500_000, help="messages, transport ceiling")
    p.add_argument("--faust", type=int, default=200_000, help="messages, Faust ceilings")
    p.add_argument("--scale-alerts", type=int, default=100_000, help="alerts, 1 vs 2 workers")
    p.add_argument("--latency-s", type=float, default=30, help="seconds of paced production")
    p.add_argument("--am-alerts", type=int, default=200_000, help="alerts for Alertmanager")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument(
        "--components",
        type=int,
        default=1,
        help="weakly connected components of the generated 1,000-service topology (users' "
        "estates are one: 1)",
    )
    p.add_argument(
        "--domains",
        type=int,
        default=1,
        help="correlation domains the topology is split into in the storm runs "
        "(worker.domains; make bench-storm uses 2)",
    )
    p.add_argument(
        "--storm-only",
        action="store_true",
        help="make bench-storm: only the connected storm with 1 and 2 workers, its largest "
        "event, worker exits, RSS and grouping against a single domain",
    )

    p.add_argument(
        "--rebalance-timeout-s",
        type=float,
        default=3.0,
        help="rebalance (and so session) timeout of the workers and Faust ceiling apps",
    )
    p.add_argument("--no-ceilings", action="store_true", help="skip transport and Faust")
    p.add_argument("--no-alertmanager", action="store_true")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    p.add_argument(
        "--latency-at",
        type=float,
        nargs="+",
        metavar="RATE",
        help="only the latency phase and both floors, at each of these alerts/s",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    p = parser()
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if args.latency_at:
        if min(args.latency_at) <= 0:
            p.error("--latency-at: rates must be > 0 alerts/s")
        latency_sweep(args.latency_at, args)
        return
    if args.budget_s is None:
        args.budget_s = 900.0 if args.storm_only else 300.0
    if args.quick:
        args.alerts = min(args.alerts, 50_000)
        args.transport = min(args.transport, 100_000)
        args.faust = min(args.faust, 50_000)
        args.scale_alerts = min(args.scale_alerts, 50_000)
        args.am_alerts = min(args.am_alerts, 50_000)
        args.latency_s = min(args.latency_s, 10)
        args.budget_s = min(args.budget_s, 120)
    if args.storm_only:
        fig = run_storm(args)
        if args.json:
            write_json(args.json, fig)
        return
    run_all(args)


def run_all(args: argparse.Namespace) -> None:
    """``make bench``: ceilings, the worker on a backlog, latency at half its rate with both
    floors, scaling, Alertmanager; then the table (and ``--json``)."""
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        log(f"[yellow]{msg}[/yellow]")

    cpu = os.cpu_count() or 1
    log(f"{cpu} CPU cores; generating the storm ({args.alerts:,} alerts, 1,000 services)")
    paced_guess = 200_000
    storm = storm_mod.generate(
        args.alerts + paced_guess + args.scale_alerts, components=args.components
    )
    main_msgs = storm.messages[: args.alerts]
    rest = storm.messages[args.alerts :]
    workdir = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    topo_path = workdir / "topology.yaml"
    topo_path.write_text(storm_mod.topology_yaml(storm.topology))
    log(f"mean alert size {storm.mean_size:.0f} B, topology {topo_path}")

    broker = start_broker(log_path=workdir / "tansu.log")
    redis_service: Service | None = None
    fig: dict[str, Any] = {"cpu": cpu, "alert_bytes": storm.mean_size, "notes": notes}
    try:
        redis_service = start_redis()
        r = redis.Redis.from_url(redis_service.url)
        bootstrap = broker.url

        fig["transport"] = {"produce": float("nan"), "consume": float("nan")}
        fig["faust_consume"] = fig["faust_forward"] = None
        if not args.no_ceilings:
            fig.update(ceilings(bootstrap, storm.messages, args, note))

        log(f"3. full pipeline, 1 worker, {len(main_msgs):,} alerts pre-produced")
        services = {"broker": broker.proc.pid, "redis": redis_service.proc.pid}
        run1 = pipeline_run(
            bootstrap, redis_service.url, topo_path, main_msgs, args, note, r, services
        )
        fig["pipeline"] = run1

        half = run1.rate / 2
        n_paced = min(len(rest), int(half * args.latency_s) + 200)
        paced = rest[:n_paced]
        log(
            f"   latency at half the max rate: {half:,.0f} alerts/s for ~{args.latency_s:.0f} s, "
            "each measurement on a fresh broker"
        )
        fig.update(
            latency_phase(
                workdir, redis_service.url, topo_path, paced, half, args, note, not args.no_ceilings
            )
        )
        check_histogram(fig["latency"], note)

        if not args.no_scaling:
            scale = args.scale_alerts
            scale_msgs = rest[-scale:] if len(rest) >= scale else main_msgs[:scale]
            fig["scaling"] = scaling(
                bootstrap, redis_service.url, topo_path, scale_msgs, args, note
            )

        if not args.no_alertmanager:
            n_am = min(args.am_alerts, len(main_msgs))
            log(f"4. Alertmanager, {n_am:,} alerts in batches of 1,000")
            fig["alertmanager"] = alertmanager_rate([v for _, v in main_msgs[:n_am]], 1000, 2, note)
            log(f"   {fig['alertmanager']}")
        else:
            note("Alertmanager skipped: --no-alertmanager")
    finally:
        if redis_service is not None:
            redis_service.stop()
        broker.stop()

    report(fig)
    if args.json:
        write_json(args.json, fig)
