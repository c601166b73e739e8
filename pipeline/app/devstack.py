"""``stormwatch dev``: broker + Redis + worker + a replayed storm, incidents shown live (a
table redrawn in place on a terminal, one line per incident event otherwise: see
:mod:`pipeline.app.devview`)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Consumer, Producer
from rich.console import Console

from pipeline.adapters.oncall_store import OnCallStore
from pipeline.app.devremediation import RestartDemo, remediation_demo
from pipeline.app.devview import Display, LiveDisplay, PlainDisplay
from pipeline.app.localstack import LocalStackError, local_stack, port_in_use, worker_env
from pipeline.config import Settings
from pipeline.domain.oncall import Directory
from pipeline.domain.schemas import EventType, IncidentEvent

console = Console()
_event_decoder = msgspec.json.Decoder(IncidentEvent)


def _shifted_storm(path: Path) -> list[tuple[float, dict[str, Any]]]:
    """Alerts with timestamps moved so that the storm ends now; (offset_s, alert) pairs."""
    rows = [msgspec.json.decode(line) for line in path.read_bytes().splitlines() if line.strip()]
    if not rows:
        return []
    times = [datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")) for r in rows]
    start = min(times)
    span = (max(times) - start).total_seconds()
    now = time.time()
    out = []
    for row, ts in zip(rows, times, strict=True):
        offset = (ts - start).total_seconds()
        shifted = datetime.fromtimestamp(now - span + offset, tz=UTC)
        row["timestamp"] = shifted.isoformat().replace("+00:00", "Z")
        out.append((offset, row))
    return out


def run_dev(
    *,
    storm: Path,
    topology: Path,
    speed: float,
    broker_port: int,
    redis_port: int,
    web_port: int,
    exit_after: float,
    fail: Callable[[str], None],
    view: str = "auto",
    oncall: Directory | None = None,
) -> None:
    """Run the local stack until Ctrl-C (or ``exit_after`` seconds after the storm ended).
    ``view``: ``live`` (a table redrawn in place), ``plain`` (a line per incident event) or
    ``auto`` (live on a terminal)."""
    if not storm.is_file():
        fail(f"storm file {str(storm)!r} does not exist")
        return
    if not topology.is_file():
        fail(f"topology file {str(topology)!r} does not exist")
        return
    for what, port in (("broker", broker_port), ("Redis", redis_port), ("web", web_port)):
        if port_in_use(port):
            fail(
                f"port {port} for the {what} is already in use: stop what listens there "
                f"or pass --{what.lower()}-port with a free port"
            )
            return
    live = view == "live" or (view == "auto" and console.is_terminal)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # a closed terminal stops what we started too
        signal.signal(sig, _interrupted)
    started = time.monotonic()
    try:
        with local_stack(broker_port, redis_port) as (broker, redis_url):
            console.print(f"broker  [bold]{broker.url}[/] (Tansu, in memory)")
            console.print(f"redis   [bold]{redis_url}[/]")
            if oncall is not None:
                _load_oncall(redis_url, oncall)
            _run_with_worker(
                broker.url, redis_url, topology, storm, speed, web_port, exit_after, started, live
            )
    except LocalStackError as exc:
        fail(str(exc))


def _load_oncall(redis_url: str, directory: Directory) -> None:
    """Store the on-call directory where the worker reads it (responder recommendations)."""
    import redis

    prefix = Settings(redis={"url": redis_url}).redis.key_prefix
    OnCallStore(redis.Redis.from_url(redis_url), prefix).replace(directory)
    console.print(
        f"oncall  {len(directory.people)} people, {len(directory.teams)} teams: incidents name "
        "who should respond"
    )


#: the worker settings that configure its web writes' authentication (pipeline.app.web_auth)
WEB_AUTH_VARS = tuple(
    f"STORMWATCH_WORKER__{name}" for name in ("WEB_TOKENS", "WEB_TOKEN_FILE", "WEB_INSECURE")
)


def dev_web_token(env: dict[str, str]) -> str | None:
    """Give the dev worker a fresh bearer token for its web writes (on-call ownership and
    overrides), unless ``env`` configures their authentication already; the token, or None."""
    if any(env.get(name) for name in WEB_AUTH_VARS):
        return None
    token = secrets.token_hex(32)
    env["STORMWATCH_WORKER__WEB_TOKENS"] = token
    return token


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run_with_worker(
    bootstrap: str,
    redis_url: str,
    topology: Path,
    storm: Path,
    speed: float,
    web_port: int,
    exit_after: float,
    started: float,
    live: bool,
) -> None:
    env = worker_env(bootstrap=bootstrap, redis_url=redis_url, topology=topology, web_port=web_port)
    token = dev_web_token(env)
    settings = Settings(**_settings_from(env))
    with ExitStack() as stack:
        out = None
        if live:  # the worker's own output would tear the table: it goes to a file
            log_path = Path(tempfile.gettempdir()) / f"stormwatch-dev-worker-{os.getpid()}.log"
            out = stack.enter_context(log_path.open("wb"))
        worker = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "worker"],
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=out,
        )
        web = f"http://127.0.0.1:{web_port}"
        console.print(f"worker  pid {worker.pid}, metrics on [bold]{web}/metrics[/]")
        if out is not None:
            console.print(f"        its log: {out.name}")
        console.print(f"pages   [bold]{web}/incidents[/] (open and recent incidents)")
        if token is not None:
            console.print(
                f"writes  PUT/POST/DELETE {web}/oncall/... need "
                f'[bold]-H "Authorization: Bearer {token}"[/] (made for this run)',
                soft_wrap=True,
            )
        pages = f"{web}/incidents"
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stormwatch-dev-")))
        demo = stack.enter_context(
            remediation_demo(env, workdir, Path("runbooks"), settings.topics.alerts_raw)
        )
        if demo is not None:
            console.print(
                f"remedy  supervisord on [bold]{demo.sup.url}[/] runs demo-worker; "
                "it will crash once and be restarted by its runbook"
            )
        display: Display
        if live:
            live_display = LiveDisplay(console, pages)
            display = stack.enter_context(live_display.running())
        else:
            display = PlainDisplay(console)
        _watch_worker(settings, storm, speed, exit_after, started, worker, display, demo)


def _watch_worker(
    settings: Settings,
    storm: Path,
    speed: float,
    exit_after: float,
    started: float,
    worker: subprocess.Popen[bytes],
    display: Display,
    demo: RestartDemo | None = None,
) -> None:
    try:
        _play_and_watch(settings, storm, speed, exit_after, started, worker, display, demo)
    except KeyboardInterrupt:
        display.note("\nstopping…")
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


def _settings_from(env: dict[str, str]) -> dict[str, Any]:
    return {
        "kafka": {"bootstrap_servers": env["STORMWATCH_KAFKA__BOOTSTRAP_SERVERS"]},
        "redis": {"url": env["STORMWATCH_REDIS__URL"]},
    }


def _play_and_watch(
    settings: Settings,
    storm: Path,
    speed: float,
    exit_after: float,
    started: float,
    worker: subprocess.Popen[bytes],
    display: Display,
    demo: RestartDemo | None = None,
) -> None:
    conf = settings.kafka.confluent_config()
    consumer = Consumer(
        {
            **conf,
            "group.id": f"stormwatch-dev-viewer-{os.getpid()}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "max.poll.interval.ms": 6000,
            "topic.metadata.refresh.interval.ms": 1000,
            "log_level": 2,
        }
    )
    topics = [settings.topics.incidents]
    if demo is not None:
        topics.append(settings.topics.remediations)
    consumer.subscribe(topics)
    producer = Producer({**conf, "linger.ms": 5})
    alerts = _shifted_storm(storm)
    display.note(
        f"storm   {len(alerts)} alerts from {storm.name}, played at {speed:g}x; Ctrl-C stops"
    )
    t0 = time.monotonic()
    sent = 0
    first_incident = False
    done_at: float | None = None
    try:
        while True:
            if worker.poll() is not None:
                display.note(f"[red]worker exited with code {worker.returncode}[/]")
                return
            now = time.monotonic()
            while sent < len(alerts) and alerts[sent][0] / speed <= now - t0:
                row = alerts[sent][1]
                producer.produce(
                    settings.topics.alerts_raw,
                    msgspec.json.encode(row),
                    key=str(row.get("service", "")).encode(),
                )
                sent += 1
            producer.poll(0)
            display.status(sent, len(alerts))
            if sent == len(alerts) and done_at is None:
                producer.flush(10)
                done_at = now
                display.note(f"[dim]storm sent: {sent} alerts[/]")
            if demo is not None and demo.due(done_at is not None):
                display.note(demo.crash(producer))
            msg = consumer.poll(0.1)
            if msg is not None and not msg.error():
                value = msg.value()
                if value is None:
                    continue
                if msg.topic() == settings.topics.remediations:
                    shown = demo.on_record(msgspec.json.decode(value), producer) if demo else None
                    if shown is not None:
                        display.note(shown)
                    continue
                ev = _event_decoder.decode(value)
                if not first_incident:
                    first_incident = True
                    display.note(
                        f"[bold]first incident {time.monotonic() - started:.1f} s after start[/]"
                    )
                display.event(ev)
                rb = ev.incident.runbook
                if rb is not None and ev.type in (EventType.opened, EventType.root_cause_changed):
                    display.note(f"[dim]runbook {rb.id} ({rb.mode}) for {ev.incident.id}[/]")
            if exit_after and done_at is not None and now - done_at > exit_after:
                return
    finally:  # Ctrl-C mid-storm: drop the unsent rest of the storm instead of warning about it
        producer.purge()
        producer.flush(1)
        consumer.close()
