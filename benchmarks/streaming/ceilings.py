"""Throughput ceilings (phases 1 and 2 of ``make bench``): raw confluent-kafka produce and
consume rates, and the Faust apps of :mod:`benchmarks.streaming.faust_apps` with the worker's
settings (consume only, consume and forward)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import ROOT
from benchmarks.streaming.console import log
from benchmarks.streaming.kafka import (
    Messages,
    consume_rate,
    create_topics,
    cycle,
    drop_topics,
    produce,
)
from benchmarks.streaming.processes import kill


def transport_ceiling(bootstrap: str, messages: Messages, partitions: int) -> dict[str, float]:
    """Raw confluent-kafka: produce ``messages`` flat out, then consume them (messages/s)."""
    topic = f"bench.transport.{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, [topic], partitions)
    produced = produce(bootstrap, topic, messages)
    consumed = consume_rate(bootstrap, topic, len(messages))
    drop_topics(bootstrap, [topic])
    return {"produce": produced, "consume": consumed}


def faust_ceiling(
    bootstrap: str,
    mode: str,
    messages: Messages,
    partitions: int,
    note: Callable[[str], None],
    rebalance_timeout_s: float = 3.0,
) -> dict[str, Any] | None:
    """Run the Faust ceiling app; retry once if it makes no progress for 30 s (a start-up
    hang was seen once on Tansu). None if both attempts failed."""
    for attempt in (1, 2):
        try:
            return _faust_ceiling_once(bootstrap, mode, messages, partitions, rebalance_timeout_s)
        except RuntimeError as exc:
            note(f"Faust {mode} ceiling, attempt {attempt}: {exc}")
    return None


def _faust_ceiling_once(
    bootstrap: str, mode: str, messages: Messages, partitions: int, rebalance_timeout_s: float
) -> dict[str, Any]:
    ns = f"bench.faust.{mode}.{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, [ns, ns + ".out"], partitions)
    produce(bootstrap, ns, messages)
    result = Path(tempfile.mkdtemp(prefix="sw-ceiling-")) / "result.json"
    progress = Path(str(result) + ".progress")
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.streaming.faust_apps",
        mode,
        "--bootstrap",
        bootstrap,
        "--topic",
        ns,
        "--out-topic",
        ns + ".out",
        "--count",
        str(len(messages)),
        "--partitions",
        str(partitions),
        "--result",
        str(result),
        "--rebalance-timeout",
        str(rebalance_timeout_s),
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        seen, changed = "", time.monotonic()
        while not result.exists():
            if proc.poll() is not None:
                err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise RuntimeError(f"exited {proc.returncode}: {err}")
            now = progress.read_text() if progress.exists() else ""
            if now != seen:
                seen, changed = now, time.monotonic()
            elif time.monotonic() - changed > 30:
                raise RuntimeError(f"no progress for 30 s (at {seen or 0} messages)")
            time.sleep(0.2)
        data: dict[str, Any] = json.loads(result.read_text())
        return data
    finally:
        kill(proc)
        drop_topics(bootstrap, [ns, ns + ".out"])


def ceilings(
    bootstrap: str, messages: Messages, args: argparse.Namespace, note: Callable[[str], None]
) -> dict[str, Any]:
    """Phases 1 and 2: the transport ceiling over ``args.transport`` messages and both Faust
    ceilings over ``args.faust`` each, cycling through ``messages``."""
    fig: dict[str, Any] = {}
    log(f"1. transport ceiling, {args.transport:,} messages")
    fig["transport"] = transport_ceiling(
        bootstrap, cycle(messages, args.transport), args.partitions
    )
    log(f"   {fig['transport']}")

    log(f"2. Faust ceilings, {args.faust:,} messages each")
    for mode in ("consume", "forward"):
        fig[f"faust_{mode}"] = faust_ceiling(
            bootstrap,
            mode,
            cycle(messages, args.faust),
            args.partitions,
            note,
            args.rebalance_timeout_s,
        )
        log(f"   {mode}: {fig[f'faust_{mode}']}")
    return fig
