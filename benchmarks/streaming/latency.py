"""The latency phase (``make bench`` at half the measured rate, ``make bench-latency`` at given
rates): one worker fed by a paced producer, processing latency from its histogram and produce ->
first incident event from the incidents topic, next to both floors, each on a fresh broker."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from benchmarks import storm as storm_mod
from benchmarks.streaming.console import log
from benchmarks.streaming.floors import faust_latency, transport_latency
from benchmarks.streaming.kafka import Messages, produce, produce_paced
from benchmarks.streaming.metrics import latency_buckets, pct, processed, quantile, scrape
from benchmarks.streaming.processes import Tenant, fresh_broker
from benchmarks.streaming.report import latency_table, write_json
from pipeline.app.localstack import start_redis


def incident_times(bootstrap: str, topic: str, timeout_s: float = 60.0) -> dict[str, float]:
    """Alert id -> timestamp (s) of the first incident event on ``topic`` that carries it.

    Reads every partition from the beginning to its high watermark (no consumer group).
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "log_level": 2,
        }
    )
    first: dict[str, float] = {}
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        ends: dict[int, int] = {}
        for pid in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, pid), timeout=10)
            if high > low:
                ends[pid] = high
        consumer.assign([TopicPartition(topic, pid, OFFSET_BEGINNING) for pid in ends])
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5000, timeout=0.5):
                if msg.error():
                    continue
                pid, offset = msg.partition(), msg.offset()
                if pid is not None and offset is not None and offset + 1 >= ends.get(pid, 0):
                    ends.pop(pid, None)
                at = msg.timestamp()[1] / 1000
                event = json.loads(msg.value() or b"{}")
                for aid in event.get("incident", {}).get("alert_ids", []):
                    if aid not in first or at < first[aid]:
                        first[aid] = at
    finally:
        consumer.close()
    return first


def latency_at(
    tenant: Tenant, messages: Messages, rate: float, timeout_s: float
) -> dict[str, float]:
    """One worker, alerts produced at ``rate``: produce time -> first incident event with the
    alert (the incident message's CreateTime, stamped by the worker's producer at send)."""
    tenant.start_workers(1)
    port = tenant.workers[0][1]
    # warm-up: a few alerts so the consumer group has settled before the paced run
    warm, paced = messages[:200], messages[200:]
    produce(tenant.bootstrap, tenant.topic("alerts.raw"), warm)
    deadline = time.monotonic() + 60
    while processed(scrape(port)) < len(warm) and time.monotonic() < deadline:
        time.sleep(0.2)
    before = latency_buckets(scrape(port))
    achieved, sent_at = produce_paced(tenant.bootstrap, tenant.topic("alerts.raw"), paced, rate)
    deadline = time.monotonic() + timeout_s
    samples = scrape(port)
    last_n, last_change = processed(samples), time.monotonic()
    while processed(samples) < len(messages) and time.monotonic() < deadline:
        if time.monotonic() - last_change > 5:  # drained (a few may be counted elsewhere)
            break
        time.sleep(0.25)
        samples = scrape(port)
        if processed(samples) != last_n:
            last_n, last_change = processed(samples), time.monotonic()
    after = latency_buckets(samples)
    hist = {b: after[b] - before.get(b, 0.0) for b in after}
    seen = incident_times(tenant.bootstrap, tenant.topic("incidents"))
    lat = []
    for (_, value), t_sent in zip(paced, sent_at, strict=True):
        at = seen.get(json.loads(value)["id"])
        if at is not None:
            lat.append(max(0.0, at - t_sent))
    quarter = max(1, len(lat) // 4)
    return {
        "rate": achieved,
        "p50": pct(lat, 0.5),
        "p95": pct(lat, 0.95),
        "p99": pct(lat, 0.99),
        "max": max(lat, default=float("nan")),
        "p50_first_quarter": pct(lat[:quarter], 0.5),
        "p50_last_quarter": pct(lat[-quarter:], 0.5),
        "measured": len(lat),
        "paced": len(paced),
        "processed": processed(samples) - len(warm),
        "hist_p50": quantile(hist, 0.5),
        "hist_p99": quantile(hist, 0.99),
        "hist_over_5s": hist.get(float("inf"), 0.0) - hist.get(5.0, 0.0),
        "hist_count": hist.get(float("inf"), 0.0),
    }


def latency_phase(
    workdir: Path,
    redis_url: str,
    topo_path: Path,
    paced: Messages,
    rate: float,
    args: argparse.Namespace,
    note: Callable[[str], None],
    floors: bool = True,
) -> dict[str, Any]:
    """Processing latency of one worker at ``rate`` (``latency``) and, with ``floors``, the
    Faust and raw-client floors at the same rate over the same messages (``faust_latency``,
    ``transport_latency``), each on a fresh broker whose CPU it reports."""
    out: dict[str, Any] = {}
    with fresh_broker(workdir, "latency") as (lat_broker, cores):
        tenant = Tenant(
            lat_broker.url, redis_url, topo_path, args.partitions, args.rebalance_timeout_s
        )
        tenant.create_topics()
        try:
            out["latency"] = latency_at(tenant, paced, rate, 120)
        finally:
            tenant.stop()
    out["latency"]["broker_cores"] = cores[0]
    log(f"   {out['latency']}")
    if not floors:
        return out
    log(f"   Faust latency floor at {rate:,.0f} messages/s (2 hops, no work)")
    with fresh_broker(workdir, "faust-floor") as (floor_broker, cores):
        out["faust_latency"] = faust_latency(floor_broker.url, paced, args.partitions, rate)
    if out["faust_latency"] is None:
        note("Faust latency floor: the relay app did not start within 60 s")
    else:
        out["faust_latency"]["broker_cores"] = cores[0]
    log(f"   {out['faust_latency']}")
    log(f"   transport latency floor at {rate:,.0f} messages/s (2 hops, raw clients)")
    with fresh_broker(workdir, "transport-floor") as (floor_broker, cores):
        out["transport_latency"] = transport_latency(floor_broker.url, paced, args.partitions, rate)
    out["transport_latency"]["broker_cores"] = cores[0]
    log(f"   {out['transport_latency']}")
    return out


def latency_sweep(rates: Sequence[float], args: argparse.Namespace) -> None:
    """``--latency-at``: the latency phase and both floors at each rate, then one table."""
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        log(f"[yellow]{msg}[/yellow]")

    storm = storm_mod.generate(int(max(rates) * args.latency_s) + 400)
    workdir = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    topo_path = workdir / "topology.yaml"
    topo_path.write_text(storm_mod.topology_yaml(storm.topology))
    redis_service = start_redis()
    rows: list[dict[str, Any]] = []
    try:
        for rate in rates:
            paced = storm.messages[: int(rate * args.latency_s) + 200]
            log(f"latency at {rate:,.0f} alerts/s for ~{args.latency_s:.0f} s")
            rows.append(
                latency_phase(workdir, redis_service.url, topo_path, paced, rate, args, note)
            )
    finally:
        redis_service.stop()
    latency_table(rows, args.latency_s, notes)
    if args.json:
        write_json(args.json, {"latency_s": args.latency_s, "rates": rows, "notes": notes})


def check_histogram(lat: dict[str, Any], note: Callable[[str], None]) -> None:
    """Say so when the worker's latency histogram put nearly every alert above 5 s."""
    if lat["hist_count"] and lat["hist_over_5s"] >= 0.99 * lat["hist_count"]:
        note(
            "the worker's stormwatch_alert_processing_seconds put "
            f"{lat['hist_over_5s']:,.0f} of {lat['hist_count']:,.0f} observations above 5 s: "
            "its arrival header holds Faust's Message.timestamp (seconds) but is read as "
            "milliseconds, so the bench measures produce -> incident event itself"
        )
