"""``stormwatch remediation``: run the remediation process, check runbooks, flip the kill
switch, print an incident's audit trail (docs/remediation.md). Errors are one line, exit 2."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from pipeline.adapters.remediation.redis_state import RedisRemediationState

remediation_app = typer.Typer(
    no_args_is_help=True, help="Runbooks and guarded remediation (docs/remediation.md)."
)
err = Console(stderr=True)


def fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _settings(**remediation: object) -> object:
    from pipeline.config import ConfigError, load_settings

    overrides = {k: v for k, v in remediation.items() if v is not None}
    try:
        return load_settings(**({"remediation": overrides} if overrides else {}))
    except ConfigError as exc:
        fail(str(exc))


RunbooksOpt = Annotated[
    Path | None, typer.Option(help="runbook directory (STORMWATCH_REMEDIATION__RUNBOOKS)")
]
InventoryOpt = Annotated[
    Path | None, typer.Option(help="inventory file (STORMWATCH_REMEDIATION__INVENTORY)")
]


@remediation_app.command("check")
def check(runbooks: RunbooksOpt = None, inventory: InventoryOpt = None) -> None:
    """Validate the runbooks and the inventory; print what each runbook matches and does."""
    from pipeline.config import Settings
    from pipeline.domain.remediation.runbook import RunbookError, load_runbooks
    from pipeline.domain.remediation.targets import InventoryError, load_inventory

    settings = _settings(runbooks=runbooks, inventory=inventory)
    assert isinstance(settings, Settings)
    try:
        books = load_runbooks(settings.remediation.runbooks)
        inv = load_inventory(settings.remediation.inventory)
    except (RunbookError, InventoryError) as exc:
        fail(str(exc))
    for rb in books:
        steps = ", ".join(f"{s.id}: {s.action}" for s in rb.steps) or "none"
        err.print(f"{rb.id}: mode {rb.mode}; steps {escape(steps)}")
    err.print(f"{len(books)} runbooks, {len(inv.services)} services in the inventory: valid")


@remediation_app.command("run")
def run(runbooks: RunbooksOpt = None, inventory: InventoryOpt = None) -> None:
    """Run the remediation process: incidents and feedback in, guarded actions and audit
    records on the remediations topic out."""
    import redis

    from pipeline.app.remediation import (
        RemediationProcess,
        SetupError,
        approver_keys,
        build_engine,
    )
    from pipeline.config import Settings

    settings = _settings(runbooks=runbooks, inventory=inventory)
    assert isinstance(settings, Settings)
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    try:
        keys = approver_keys(settings)
        engine, state = build_engine(settings, client)
    except SetupError as exc:
        fail(str(exc))
    except redis.RedisError as exc:
        fail(f"cannot read Redis ({exc}); check STORMWATCH_REDIS__URL")
    if settings.remediation.kill_switch:
        state.set_kill_switch(True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    err.print(
        f"remediation: {len(engine.runbooks)} runbooks, {len(engine.inventory.services)} services"
    )
    if keys is None:
        err.print(
            "remediation: approvals are not signed (anyone who can write to feedback can "
            "approve as any user); set STORMWATCH_REMEDIATION__APPROVER_KEYS"
        )
    process = RemediationProcess(settings, engine, state, client, keys=keys)
    try:
        process.serve_metrics()
    except OSError as exc:
        port = settings.remediation.metrics_port
        fail(
            f"cannot serve /metrics on 127.0.0.1:{port} ({exc.strerror}): set "
            "STORMWATCH_REMEDIATION__METRICS_PORT to a free port (0: off)"
        )
    process.run(stop)


def _state() -> RedisRemediationState:
    """The remediation state in the configured Redis (settings errors end the command)."""
    import redis

    from pipeline.adapters.remediation.redis_state import RedisRemediationState
    from pipeline.config import Settings

    settings = _settings()
    assert isinstance(settings, Settings)
    return RedisRemediationState(
        redis.Redis.from_url(settings.redis.url.get_secret_value()),
        prefix=settings.redis.key_prefix,
    )


@remediation_app.command("kill-switch")
def kill_switch(
    state: Annotated[Literal["on", "off", "status"], typer.Argument(help="on, off or status")],
) -> None:
    """Turn the global kill switch on (every action refused) or off, in Redis."""
    import redis

    store = _state()
    try:
        if state != "status":
            store.set_kill_switch(state == "on")
        on = store.kill_switch()
    except redis.RedisError as exc:
        fail(f"cannot reach Redis ({exc}); check STORMWATCH_REDIS__URL")
    print("on" if on else "off")


@remediation_app.command("trail")
def trail(incident_id: Annotated[str, typer.Argument(help="incident id")]) -> None:
    """Print an incident's remediation audit trail from Redis, one JSON record a line."""
    import redis

    store = _state()
    try:
        rows = store.audit(incident_id)
    except redis.RedisError as exc:
        fail(f"cannot reach Redis ({exc}); check STORMWATCH_REDIS__URL")
    if not rows:
        fail(f"no remediation records for incident {incident_id!r}")
    for row in rows:
        sys.stdout.write(json.dumps(json.loads(row)) + "\n")


def _proposed_runbook(incident_id: str) -> str:
    """The runbook the incident's trail in Redis names last (ends the command if none)."""
    import redis

    store = _state()
    try:
        rows = store.audit(incident_id)
    except redis.RedisError as exc:
        fail(f"cannot reach Redis ({exc}); check STORMWATCH_REDIS__URL, or pass --runbook")
    for row in reversed(rows):
        found = json.loads(row).get("runbook_id")
        if found:
            return str(found)
    fail(f"no runbook is proposed for incident {incident_id!r} yet; pass --runbook ID")


@remediation_app.command("approve")
def approve(
    incident_id: Annotated[str, typer.Argument(help="incident id")],
    user: Annotated[str, typer.Option(help="the approver (a name in the runbook's approvers)")],
    deny: Annotated[bool, typer.Option(help="deny instead of approve")] = False,
    runbook: Annotated[
        str | None,
        typer.Option(
            help="runbook id (default: the one the incident's remediation trail names last)"
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            help="file holding the approver's key (or STORMWATCH_APPROVER_KEY); the approval "
            "is signed with it"
        ),
    ] = None,
) -> None:
    """Send an approval (or denial) of an incident's runbook to the feedback topic, signed
    with the approver's key when one is given."""
    import os
    from datetime import UTC, datetime

    import msgspec
    from confluent_kafka import KafkaException, Producer

    from pipeline.config import Settings
    from pipeline.domain.remediation.signing import MIN_KEY_CHARS, sign_approval
    from pipeline.domain.schemas import Feedback, FeedbackAction

    settings = _settings()
    assert isinstance(settings, Settings)
    key = os.environ.get("STORMWATCH_APPROVER_KEY")
    if key_file is not None:
        try:
            key = key_file.read_text().strip()
        except OSError as exc:
            fail(f"cannot read key file {str(key_file)!r}: {exc.strerror}")
    if key is not None and len(key) < MIN_KEY_CHARS:
        fail(f"the approver key must have {MIN_KEY_CHARS} characters at least")
    if key is not None and runbook is None:
        runbook = _proposed_runbook(incident_id)  # a signature names what it approves
    fb = Feedback(
        incident_id=incident_id,
        action=FeedbackAction.deny if deny else FeedbackAction.approve,
        timestamp=datetime.now(UTC),
        user=user,
        runbook=runbook,
    )
    if key is not None:
        fb.signature = sign_approval(
            key, fb.incident_id, fb.action.value, fb.runbook, user, fb.timestamp
        )
    producer = Producer({**settings.kafka.confluent_config(), "acks": "all"})
    delivered: list[str | None] = []
    try:
        producer.produce(
            settings.topics.feedback,
            key=incident_id.encode(),
            value=msgspec.json.encode(fb),
            on_delivery=lambda e, m: delivered.append(str(e) if e else None),
        )
        producer.flush(30)
    except (KafkaException, BufferError) as exc:
        fail(f"cannot send to {settings.topics.feedback} ({exc}); check STORMWATCH_KAFKA__*")
    if delivered != [None]:
        why = delivered[0] if delivered else "no answer from the broker within 30 s"
        fail(f"the {fb.action.value} was not delivered ({why}); check STORMWATCH_KAFKA__*")
    signed = "signed" if fb.signature else "not signed"
    err.print(f"{fb.action.value} of {incident_id} by {user} sent ({signed})")
