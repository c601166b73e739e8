"""Start the gateway: tokens and the listening socket are checked first (one-line errors),
then uvicorn serves until SIGINT or SIGTERM; shutdown lets open requests finish and flushes
the producer. The broker need not be up at start: requests are answered 503 and
``/healthz`` says why until it is, and the topics are created once it answers."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType

import structlog
import uvicorn
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from pipeline.app.topics import ensure_topics
from pipeline.auth import TokenError, TokenNames, TokenSet, configured_tokens
from pipeline.config import GatewaySettings, Settings
from pipeline.gateway.app import Gateway, Topics, build_app
from pipeline.gateway.health import BrokerProbe, admin_client, kafka_check
from pipeline.gateway.metrics import GatewayMetrics
from pipeline.gateway.sink import KafkaSink

log = structlog.get_logger("stormwatch.gateway")

#: how long shutdown waits for the producer to deliver what is still queued
FLUSH_TIMEOUT_S = 10.0


#: how the gateway's tokens are set (named in its one-line errors)
GATEWAY_TOKENS = TokenNames(
    inline="STORMWATCH_GATEWAY__TOKENS",
    file="--token-file or STORMWATCH_GATEWAY__TOKEN_FILE",
    insecure="--insecure (STORMWATCH_GATEWAY__INSECURE)",
)


def resolve_tokens(gw: GatewaySettings) -> TokenSet | None:
    """The accepted tokens, or None when authentication is off; raises :class:`TokenError`
    for a contradictory or missing configuration."""
    inline = gw.tokens.get_secret_value() if gw.tokens is not None else None
    tokens = configured_tokens(inline, gw.token_file, gw.insecure, GATEWAY_TOKENS)
    if tokens is not None and not tokens:
        raise TokenError(
            "stormwatch ingest needs bearer tokens: pass --token-file PATH or set "
            "STORMWATCH_GATEWAY__TOKEN_FILE or STORMWATCH_GATEWAY__TOKENS "
            "(--insecure turns authentication off, for development only)"
        )
    return tokens


def listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn (raises OSError when the address is taken or bad)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


async def _create_topics(settings: Settings, admin: AdminClient, probe: BrokerProbe) -> None:
    """Create the alerts and dead-letter topics (configured partitions) once the broker
    answers, so the first produce does not auto-create them with the broker's defaults."""
    names = [settings.topics.alerts_raw, settings.topics.dlq]
    warned = False
    while True:
        health = await probe.health()
        if health.detail.get("broker") == "reachable":
            try:
                await asyncio.to_thread(ensure_topics, settings, 10.0, names, admin)
                return
            except KafkaException as exc:
                log.warning("cannot create topics yet", error=str(exc.args[0]))
        elif not warned:
            log.warning("broker not reachable yet; answering 503", broker=health.detail)
            warned = True
        await asyncio.sleep(2.0)


def run_gateway(settings: Settings, fail: Callable[[str], None]) -> None:
    """Serve until stopped; user-facing problems go to ``fail`` as one line."""
    gw = settings.gateway
    try:
        tokens = resolve_tokens(gw)
    except TokenError as exc:
        fail(str(exc))
        return
    try:
        sock = listen(gw.host, gw.port)
    except OSError as exc:
        fail(
            f"cannot listen on {gw.host}:{gw.port} ({exc.strerror or exc}); pick another "
            "--host/--port (STORMWATCH_GATEWAY__HOST/__PORT) or stop what listens there"
        )
        return
    level = getattr(logging, settings.log_level.upper())
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
    if tokens is None:
        log.warning("authentication is OFF (--insecure): for development only")

    client = settings.kafka.confluent_config()
    topics = Topics(
        settings.topics.alerts_raw, settings.topics.dlq, settings.topics.max_message_bytes
    )
    sink = KafkaSink(
        client,
        topics.alerts,
        delivery_timeout_s=gw.delivery_timeout_s,
        max_message_bytes=topics.max_message_bytes,
    )
    admin = admin_client(client)
    probe = BrokerProbe(kafka_check(admin, topics.alerts, timeout_s=2.0))
    metrics = GatewayMetrics(CollectorRegistry())
    generic = settings.formats.generic
    gateway = Gateway(gw, topics, sink, probe, metrics, tokens, generic=generic)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        creating = asyncio.create_task(_create_topics(settings, admin, probe))
        log.info(
            "stormwatch ingest listening",
            url=f"http://{gw.host}:{gw.port}",
            topic=topics.alerts,
            authentication="off" if tokens is None else f"{len(tokens)} tokens",
        )
        try:
            yield
        finally:
            creating.cancel()
            await gateway.drain()
            left = await asyncio.to_thread(sink.close, FLUSH_TIMEOUT_S)
            if left:
                log.warning("messages not delivered at shutdown", count=left)

    config = uvicorn.Config(
        build_app(gateway, lifespan),
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=int(gw.delivery_timeout_s) + 5,
    )
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the
    # handler it found: make that a clean exit
    signal.signal(signal.SIGTERM, _exit_zero)
    uvicorn.Server(config).run(sockets=[sock])


def _exit_zero(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)
