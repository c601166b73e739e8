"""Minimal Faust apps for the Faust ceilings and the Faust latency floor of ``make bench``, run
as subprocesses by :mod:`benchmarks.streaming.ceilings` and :mod:`benchmarks.streaming.floors`,
with the worker's settings.

``consume``: an agent that only counts, batching with ``stream.take_events`` like the worker.
``forward``: the same, but every message is sent on to another topic (``await send`` per
message, then one ``gather`` per batch): a consume-and-produce ceiling. (The worker's ingest
agent sends one batch message per target partition instead, see ``pipeline.app.routing``.)
``relay``: the Faust latency floor, the worker's two hops with no work. Agent ``hop1`` packs
each ``take_events`` batch into one message per partition of ``<out-topic>`` (as the ingest
agent routes alerts); agent ``hop2`` consumes those and records, per message, the time since
the send time it carries in header ``t`` (epoch seconds; ``0`` marks warm-up messages, not
recorded). It runs until killed; it writes how many messages it has seen to
``<result>.progress`` every half second, and ``{"mode", "count", "latencies"}`` to
``--result`` once: when it has seen ``--count`` messages, or when no message came for half a
second after measured ones did.
All use the worker's Faust settings, event loop (uvloop) and tuned transport.

Each run consumes ``--count`` messages already on ``--topic`` (created and filled by the
caller), then writes ``{"mode", "count", "seconds", "rate"}`` (first message seen ->
last message counted, or last send acknowledged) as JSON to ``--result`` and waits to be
killed. While running it writes the count so far to ``<result>.progress`` about once a
second. Usage::

    python -m benchmarks.streaming.faust_apps consume --bootstrap H:P --topic T --count N \
        --result OUT.json [--out-topic T2] [--batch 500] [--within 0.005]

(``--json OUT.json`` is another name of ``--result``.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import faust
import msgspec

from pipeline.app.faust_settings import faust_settings
from pipeline.app.localstack import LOCAL_FETCH_MAX_WAIT_MS
from pipeline.config import KafkaSettings, Settings, TopicSettings, WorkerSettings


def build_app(args: argparse.Namespace) -> faust.App:
    """A Faust app with the settings the worker uses (:mod:`pipeline.app.faust_settings`)."""
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=args.bootstrap),
        topics=TopicSettings(partitions=args.partitions),
        worker=WorkerSettings(
            batch_size=args.batch,
            batch_timeout_s=args.within,
            rebalance_timeout_s=args.rebalance_timeout,
            session_timeout_s=args.session_timeout,
            fetch_max_wait_ms=LOCAL_FETCH_MAX_WAIT_MS,
            data_dir=Path(tempfile.gettempdir()) / "stormwatch-data",
        ),
    )
    conf = faust_settings(settings)
    conf["web_enabled"] = False
    app = faust.App(f"ceiling-{args.mode}-{uuid.uuid4().hex[:6]}", **conf)
    source = app.topic(args.topic, key_type=bytes, value_type=bytes)
    sink = app.topic(args.out_topic or args.topic + ".out", key_type=bytes, value_type=bytes)
    state: dict[str, Any] = {"n": 0, "first": 0.0, "done": False, "progress_at": 0.0}
    progress = Path(str(args.result) + ".progress")

    def finish() -> None:
        if state["done"]:
            return
        state["done"] = True
        last = time.perf_counter()
        seconds = last - state["first"]
        result = {
            "mode": args.mode,
            "count": state["n"],
            "seconds": seconds,
            "rate": state["n"] / seconds if seconds > 0 else 0.0,
        }
        tmp = Path(str(args.result) + ".tmp")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, args.result)

    if args.mode == "relay":
        _relay_agents(app, source, sink, args)
        return app

    @app.agent(source, name="ceiling")
    async def ceiling(stream: Any) -> None:
        async for events in stream.take_events(args.batch, within=args.within):
            if not state["first"]:
                state["first"] = time.perf_counter()
            if args.mode == "forward":
                sends = []
                for event in events:
                    msg = event.message
                    sends.append(await sink.send(key=msg.key, value=msg.value))
                await asyncio.gather(*sends)
            state["n"] += len(events)
            if state["n"] >= args.count:
                finish()
            elif time.monotonic() - state["progress_at"] > 1.0:
                state["progress_at"] = time.monotonic()
                progress.write_text(str(state["n"]))

    return app


_pack = msgspec.msgpack.Encoder()
_unpack = msgspec.msgpack.Decoder(list[tuple[float, bytes]])


def _relay_agents(app: faust.App, source: Any, mid: Any, args: argparse.Namespace) -> None:
    latencies: list[float] = []
    state = {"seen": 0, "seen_last_tick": -1, "written": False}
    progress = Path(str(args.result) + ".progress")

    def write() -> None:  # once, after the run: dumping the list costs the loop milliseconds
        state["written"] = True
        tmp = Path(str(args.result) + ".tmp")
        tmp.write_text(
            json.dumps({"mode": "relay", "count": state["seen"], "latencies": latencies})
        )
        os.replace(tmp, args.result)

    @app.agent(source, name="hop1")
    async def hop1(stream: Any) -> None:
        async for events in stream.take_events(args.batch, within=args.within):
            parts: dict[int, list[tuple[float, bytes]]] = {}
            for event in events:
                stamp = float(dict(event.headers).get("t", b"0"))
                parts.setdefault(event.message.partition, []).append((stamp, event.value))
            sends = [
                await mid.send(value=_pack.encode(batch), partition=part)
                for part, batch in parts.items()
            ]
            await asyncio.gather(*sends)

    @app.agent(mid, name="hop2")
    async def hop2(stream: Any) -> None:
        async for events in stream.take_events(args.batch, within=args.within):
            now = time.time()
            for event in events:
                for stamp, _value in _unpack.decode(event.value):
                    state["seen"] += 1
                    if stamp:
                        latencies.append(now - stamp)
            if state["seen"] >= args.count and not state["written"]:
                write()

    @app.timer(0.5)
    async def tick() -> None:
        progress.write_text(str(state["seen"]))
        # nothing new for a tick after measured messages: some never came, write what did
        idle = state["seen"] == state["seen_last_tick"]
        if idle and latencies and not state["written"]:
            write()
        state["seen_last_tick"] = state["seen"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.streaming.faust_apps")
    p.add_argument("mode", choices=["consume", "forward", "relay"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--out-topic")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--result", "--json", dest="result", type=Path, required=True)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--batch", type=int, default=WorkerSettings().batch_size)
    p.add_argument("--within", type=float, default=WorkerSettings().batch_timeout_s)
    p.add_argument("--rebalance-timeout", type=float, default=3.0)
    p.add_argument("--session-timeout", type=float, default=10.0)
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    args = p.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    app = build_app(args)
    faust.Worker(
        app, loglevel="WARNING", quiet=True, redirect_stdouts=False
    ).execute_from_commandline()


if __name__ == "__main__":
    main()
