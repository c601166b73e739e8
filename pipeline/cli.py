"""The ``stormwatch`` command line: worker, ingest, dev, replay, detect, report, incident,
oncall, remediation, config, schemas.

User errors (bad arguments, bad configuration, bad input files, ports in use) end with one
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from pipeline.remediation_cli import remediation_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="stormwatch: Kafka-native incident correlation.",
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

if TYPE_CHECKING:
    from pipeline.domain.schemas import Alert, Incident

PACKAGE_DATA = Path(__file__).parent / "data"


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def worker(
    topology: Annotated[
        Path | None, typer.Option(help="topology YAML (default: STORMWATCH_TOPOLOGY)")
    ] = None,
) -> None:
    """Run one streaming worker (Faust) against the configured Kafka and Redis."""
    from pipeline.app.run import run_worker
    from pipeline.config import ConfigError, load_settings

    try:
        settings = load_settings(**({"topology": topology} if topology else {}))
    except ConfigError as exc:
        fail(str(exc))
    run_worker(settings, fail)


@app.command()
def ingest(
    host: Annotated[
        str | None,
        typer.Option(help="address to listen on (STORMWATCH_GATEWAY__HOST; 0.0.0.0: all)"),
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (STORMWATCH_GATEWAY__PORT)")] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="bearer tokens, one a line, or a directory of token files "
            "(STORMWATCH_GATEWAY__TOKEN_FILE; STORMWATCH_GATEWAY__TOKENS adds more)"
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="accept requests without a token: development only"),
    ] = False,
) -> None:
    """Run the HTTP ingest gateway: alert webhooks in, alerts.raw out (docs/gateway.md)."""
    from pipeline.config import ConfigError, load_settings
    from pipeline.gateway.run import run_gateway

    if port is not None and not 0 < port < 65536:
        fail(f"--port {port} is not a TCP port (1-65535)")
    overrides: dict[str, object] = {}
    for name, value in (("host", host), ("port", port), ("token_file", token_file)):
        if value is not None:
            overrides[name] = value
    if insecure:
        overrides["insecure"] = True
    try:
        settings = load_settings(**({"gateway": overrides} if overrides else {}))
    except ConfigError as exc:
        fail(str(exc))
    run_gateway(settings, fail)


@app.command()
def dev(
    speed: Annotated[float, typer.Option(help="replay speed-up of the sample storm")] = 240.0,
    storm: Annotated[Path, typer.Option(help="alerts to replay (JSON lines)")] = PACKAGE_DATA
    / "sample-storm.jsonl",
    topology: Annotated[Path, typer.Option(help="topology YAML")] = PACKAGE_DATA
    / "online-boutique.yaml",
    broker_port: Annotated[int, typer.Option(help="port for the local broker")] = 19092,
    redis_port: Annotated[int, typer.Option(help="port for local Redis")] = 16379,
    web_port: Annotated[
        int, typer.Option(help="worker web port: /incidents pages, /metrics, /healthz")
    ] = 6066,
    exit_after: Annotated[
        float, typer.Option(help="stop this many seconds after the storm ends (0: on Ctrl-C)")
    ] = 0.0,
    view: Annotated[
        str,
        typer.Option(
            help="live: a table of open incidents redrawn in place; plain: one line per "
            "incident event; auto: live on a terminal, plain in pipes and CI logs"
        ),
    ] = "auto",
    oncall: Annotated[
        Path | None,
        typer.Option(
            help="on-call YAML (docs/oncall.md) stored in the local Redis: incidents then "
            "name who should respond"
        ),
    ] = None,
) -> None:
    """Embedded local stack: broker, Redis, worker, a sample storm; incidents shown live."""
    from pipeline.app.devstack import run_dev
    from pipeline.oncall_cli import read_directory

    if view not in ("auto", "live", "plain"):
        fail(f"--view must be auto, live or plain, not {view!r}")
    if speed <= 0:
        fail("--speed must be > 0 (e.g. --speed 240 plays 4 hours of alerts in a minute)")
    for name, port in (("broker", broker_port), ("redis", redis_port), ("web", web_port)):
        if not 0 < port < 65536:
            fail(f"--{name}-port {port} is not a TCP port (1-65535)")
    run_dev(
        storm=storm,
        topology=topology,
        speed=speed,
        broker_port=broker_port,
        redis_port=redis_port,
        web_port=web_port,
        exit_after=exit_after,
        fail=fail,
        view=view,
        oncall=read_directory(oncall, topology) if oncall is not None else None,
    )


@app.command()
def replay(
    topology: Annotated[Path, typer.Option(help="topology YAML")],
    input: Annotated[Path, typer.Option("--input", help="alerts, JSON lines (any format)")],
    output: Annotated[Path, typer.Option(help="incidents, one JSON line each (final state)")],
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    domains: Annotated[
        str,
        typer.Option(
            help="correlation domains to split the largest connected component into (an "
            "integer, or 'auto': 1 unless it has more than 250 services per domain); more "
            "than 1 runs one pipeline per domain plus the cross-domain merge stage"
        ),
    ] = "1",
) -> None:
    """Run the worker's stage chain offline with event time; write incidents as JSON lines
    (correlation settings from the same STORMWATCH_CORRELATION__* environment as the worker;
    runbooks attached from STORMWATCH_REMEDIATION__RUNBOOKS as the worker attaches them)."""
    from pipeline.app.runbooks import runbook_index
    from pipeline.config import ConfigError, load_settings
    from pipeline.domain.domains import build_domain_map, choose_k
    from pipeline.domain.remediation.runbook import RunbookError
    from pipeline.domain.topology import Topology, TopologyError
    from pipeline.offline.partitioned import replay_partitioned
    from pipeline.offline.replay import (
        ReplayInputError,
        read_alerts,
        replay_alerts,
        write_incidents,
    )

    requested: int | Literal["auto"] = "auto"
    if domains != "auto":
        if not domains.isdigit() or int(domains) < 1:
            fail(f"--domains must be a positive integer or 'auto', not {domains!r}")
        requested = int(domains)
    try:
        settings = load_settings()
        correlation = settings.correlation
        topo = Topology.load(topology)
        runbooks = runbook_index(settings, topo)
    except (ConfigError, TopologyError) as exc:
        fail(str(exc))
    except RunbookError as exc:
        fail(f"{exc} (fix the runbook or STORMWATCH_REMEDIATION__RUNBOOKS)")
    if not input.is_file():
        fail(f"input file {str(input)!r} does not exist")
    k = choose_k(topo, requested)

    def run(alerts: Iterable[Alert], on_alert: Callable[[], None] | None = None) -> list[Incident]:
        if k == 1:
            return replay_alerts(topo, alerts, correlation, on_alert=on_alert, runbooks=runbooks)
        dmap = build_domain_map(topo, k)
        return replay_partitioned(
            topo, alerts, dmap, correlation, on_alert=on_alert, runbooks=runbooks
        )

    try:
        if progress and input.stat().st_size > 1_000_000:
            from rich.progress import Progress

            total = sum(1 for _ in input.open("rb"))
            with Progress(console=err, transient=True) as bar:
                task = bar.add_task("replaying", total=total)
                incidents = run(read_alerts(input), on_alert=lambda: bar.advance(task))
        else:
            incidents = run(read_alerts(input))
    except ReplayInputError as exc:
        fail(str(exc))
    try:
        with output.open("w") as fh:
            n = write_incidents(incidents, fh)
    except OSError as exc:
        fail(f"cannot write {str(output)!r}: {exc.strerror}")
    err.print(f"{n} incidents written to {output}")


@app.command()
def detect(
    input: Annotated[Path, typer.Option("--input", help="CSV with header timestamp,value")],
    output: Annotated[Path, typer.Option(help="CSV timestamp,value,anomaly_score")],
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Score a time series with the online anomaly detector (causal, one row per row;
    detector settings from the same STORMWATCH_DETECTION__* environment as the worker)."""
    from pipeline.config import ConfigError, load_settings
    from pipeline.domain.detectors import DetectorBank
    from pipeline.offline.detect import DetectInputError, run_detect

    try:
        detector = DetectorBank(load_settings().detection).new_detector()
    except ConfigError as exc:
        fail(str(exc))
    try:
        n = run_detect(input, output, progress=progress, detector=detector)
    except DetectInputError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {str(output)!r}: {exc.strerror}")
    err.print(f"{n} rows scored into {output}")


@app.command()
def report(
    output: Annotated[Path, typer.Option(help="directory for report.html and report.md")],
    incidents: Annotated[
        Path | None,
        typer.Option(help="incidents, JSON lines: replay output or incident events (offline)"),
    ] = None,
    feedback: Annotated[
        Path | None,
        typer.Option(help="feedback messages, JSON lines (ack, resolve, verdict; offline)"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="instead of files: the incidents in the configured Redis that opened this "
            "long ago at most (like 7d, 12h), with their feedback"
        ),
    ] = None,
    topology: Annotated[
        Path | None,
        typer.Option(
            help="the topology the incidents were correlated with, for its findings (with "
            "--since: STORMWATCH_TOPOLOGY unless given)"
        ),
    ] = None,
    bucket_hours: Annotated[float, typer.Option(help="length of a trend bucket, hours")] = 24.0,
) -> None:
    """Long-term insights (noisy alert rules, recurring incidents, MTTA/MTTR trends, topology
    findings) from incident and feedback files, or with --since from the live store; writes
    report.html (self-contained) and report.md."""
    import time

    import redis as redis_lib

    from pipeline.adapters.redis_store import RedisStore
    from pipeline.config import ConfigError, load_settings
    from pipeline.domain.insights import InsightsSettings
    from pipeline.domain.topology import Topology, TopologyError
    from pipeline.offline.report import ReportInputError, build_report, parse_since
    from pipeline.reports import render
    from pipeline.reports.live import store_report

    if (incidents is None) == (since is None):
        fail("give either --incidents FILE (offline) or --since DURATION (the live store)")
    if since is not None and feedback is not None:
        fail("--feedback goes with --incidents; with --since the feedback comes from Redis")
    if bucket_hours <= 0:
        fail(f"--bucket-hours must be positive, not {bucket_hours}")
    settings = InsightsSettings(bucket_s=bucket_hours * 3600)
    topo = None
    unreadable = 0
    try:
        if since is not None:
            window = parse_since(since)
            config = load_settings()
            topology = topology or config.topology
        if topology is not None:
            topo = Topology.load(topology)
        if since is not None:
            store = RedisStore.from_url(
                config.redis.url.get_secret_value(), **config.redis.store_options()
            )
            rep, unreadable = store_report(store, window, time.time(), topo, settings)
        else:
            assert incidents is not None
            rep = build_report(incidents, feedback, topo, settings)
    except (ValueError, ConfigError, TopologyError, ReportInputError) as exc:
        fail(str(exc))
    except redis_lib.RedisError as exc:
        fail(f"cannot read Redis ({exc}); check STORMWATCH_REDIS__URL")
    v = render.view(rep, topo.graph if topo else None, topo.name if topo else None)
    try:
        html, md = render.write(v, output)
    except OSError as exc:
        fail(f"cannot write the report into {str(output)!r}: {exc.strerror}")
    skipped = f" ({unreadable} unreadable records skipped)" if unreadable else ""
    err.print(f"{rep.incidents} incidents{skipped}: {html} and {md} written")


incident_app = typer.Typer(no_args_is_help=True, help="Look up incidents in Redis.")
app.add_typer(incident_app, name="incident")
app.add_typer(remediation_app, name="remediation")


@incident_app.command("show")
def incident_show(incident_id: Annotated[str, typer.Argument(help="incident id")]) -> None:
    """Print an incident with every member alert id, as JSON (from the configured Redis)."""
    import redis as redis_lib

    from pipeline.adapters.redis_store import RedisStore
    from pipeline.app.incident_lookup import incident_document
    from pipeline.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        fail(str(exc))
    store = RedisStore.from_url(
        settings.redis.url.get_secret_value(), **settings.redis.store_options()
    )
    try:
        doc = incident_document(store, incident_id)
    except redis_lib.RedisError as exc:
        fail(f"cannot read Redis ({exc}); check STORMWATCH_REDIS__URL")
    if doc is None:
        fail(f"no incident {incident_id!r} in Redis (prefix {settings.redis.key_prefix!r})")
    print(json.dumps(doc, indent=2))


from pipeline.oncall_cli import oncall_app  # noqa: E402 (after the shared commands above)

app.add_typer(oncall_app, name="oncall")


@app.command()
def config() -> None:
    """Print the effective configuration (secrets masked) as JSON."""
    from pipeline.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        fail(str(exc))
    print(json.dumps(settings.masked(), indent=2))


@app.command()
def schemas(
    write: Annotated[bool, typer.Option(help="write schemas/*.json instead of checking")] = False,
    directory: Annotated[Path, typer.Option(help="where the schema files live")] = Path("schemas"),
) -> None:
    """Generate the JSON Schema files from the code's wire types (or check they match)."""
    from pipeline.schema_files import render_schemas

    rendered = render_schemas()
    stale = [
        name
        for name, text in rendered.items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]
    if write:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            (directory / name).write_text(text)
        err.print(f"wrote {len(rendered)} schema files to {directory}/")
    elif stale:
        fail(f"schema files out of date: {', '.join(stale)}; run 'make schemas'")
    else:
        err.print("schema files are up to date")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
