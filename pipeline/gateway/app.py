"""The gateway's ASGI application (Starlette): alert endpoints, ``/healthz``, ``/metrics``.

An alert request is answered, in this order: 401 without a valid bearer token, 415 for a
body that is not JSON, 413 for a body over ``max_body_bytes``, 400 for bad JSON, 422 for a
body that is not valid in the endpoint's format, 413 for more than ``max_alerts`` alerts or
an alert bigger than a Kafka message may be, 503 (with ``Retry-After``) when the broker did
not acknowledge every alert in time, and 202 once it did. Refused bodies of authenticated
requests are dead-lettered (the sender may not keep them: Alertmanager drops a webhook
answered 4xx).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.auth import TokenSet, bearer_token, challenge
from pipeline.config import GatewaySettings
from pipeline.domain.normalize import GenericMapping, NormalizeError, normalize_message
from pipeline.domain.schemas import Alert
from pipeline.gateway.endpoints import (
    ENDPOINTS,
    Endpoint,
    content_problem,
    is_binary_cloudevent,
    parser_headers,
    path_label,
)
from pipeline.gateway.health import BrokerProbe
from pipeline.gateway.metrics import GatewayMetrics
from pipeline.gateway.records import Record, alert_records, dead_letter_record
from pipeline.gateway.sink import DeliveryFailed, Sink, deliver

log = structlog.get_logger("stormwatch.gateway")

#: ``normalize_message(raw, headers, fmt, generic)`` of :mod:`pipeline.domain.normalize`
Parser = Callable[[bytes, Mapping[str, str], str, Any], list[Alert]]


@dataclass(frozen=True)
class Topics:
    alerts: str
    dlq: str
    #: the largest message the broker takes (``topics.max_message_bytes``)
    max_message_bytes: int


class _Refused(Exception):
    """A request answered with an error: status, short error class and the reason."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _BodyTooLarge
    return bytes(body)


def _json_container(body: bytes) -> bool:
    """A JSON object or array: a body of the right shape, so a parser's refusal means it is
    not (valid) in the endpoint's format (422), not that it is malformed (400)."""
    try:
        return isinstance(msgspec.json.decode(body), dict | list)
    except msgspec.DecodeError:
        return False


class Gateway:
    """The request handlers and what they share."""

    def __init__(
        self,
        settings: GatewaySettings,
        topics: Topics,
        sink: Sink,
        probe: BrokerProbe,
        metrics: GatewayMetrics,
        tokens: TokenSet | None,
        parse: Parser = normalize_message,
        generic: GenericMapping | None = None,
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.sink = sink
        self.probe = probe
        self.metrics = metrics
        #: None: authentication is off (``insecure``)
        self.tokens = tokens
        self.parse = parse
        self.generic = generic
        self._dead_letters: set[asyncio.Task[None]] = set()

    # --- authentication ----------------------------------------------------------------

    def _unauthorized(self, request: Request) -> Response | None:
        """None when the request may go on; a 401 otherwise."""
        if self.tokens is None:
            return None
        header = request.headers.get("authorization")
        if self.tokens.check(bearer_token(header)):
            return None
        authenticate, reason = challenge(header)
        return JSONResponse(
            {"error": "unauthorized", "reason": reason},
            status_code=401,
            headers={"WWW-Authenticate": authenticate},
        )

    def _routing_key_ok(self, body: bytes) -> bool:
        """A PagerDuty event whose ``routing_key`` is a valid token."""
        assert self.tokens is not None
        try:
            obj = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return False
        key = obj.get("routing_key") if isinstance(obj, dict) else None
        return isinstance(key, str) and self.tokens.check(key)

    # --- alert endpoints -----------------------------------------------------------------

    def endpoint(self, ep: Endpoint) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            return await self.alerts(request, ep)

        return handle

    async def alerts(self, request: Request, ep: Endpoint) -> Response:
        request_id = uuid.uuid4().hex
        body: bytes | None = None
        unauthorized = self._unauthorized(request)
        if unauthorized is not None:
            if not (
                ep.pagerduty
                and self.settings.pagerduty_routing_key_auth
                and "authorization" not in request.headers
            ):
                return unauthorized
            try:  # PagerDuty clients send the credential as the event's routing key
                body = await _read_body(request, self.settings.max_body_bytes)
            except _BodyTooLarge:
                return unauthorized
            if not self._routing_key_ok(body):
                return unauthorized
        try:
            alerts = await self._accept(request, ep, request_id, body)
        except _Refused as exc:
            return self._refusal(exc, request_id)
        return self._accepted(ep, alerts, request_id)

    async def _accept(
        self, request: Request, ep: Endpoint, request_id: str, body: bytes | None
    ) -> list[Alert]:
        """The request's alerts once the broker has them (``body``: already read)."""
        problem = content_problem(ep, request.headers)
        if problem is not None:
            raise _Refused(415, "unsupported_media_type", problem)
        if body is None:
            limit = self.settings.max_body_bytes
            try:
                body = await _read_body(request, limit)
            except _BodyTooLarge:
                raise _Refused(
                    413, "body_too_large", f"the request body is larger than {limit} bytes"
                ) from None
        self.metrics.payload_bytes.labels(ep.fmt).observe(len(body))
        headers = parser_headers(request.headers)
        alerts = self._parse(body, headers, ep, request_id)
        records = alert_records(alerts, ep.fmt, request_id)
        self._check_sizes(records, body, headers, ep, request_id)
        started = time.perf_counter()
        try:
            await deliver(self.sink, self.topics.alerts, records, self.settings.delivery_timeout_s)
        except DeliveryFailed as exc:
            if exc.too_large:
                raise _Refused(413, "message_too_large", str(exc)) from None
            if exc.transient:
                raise _Refused(503, "broker_unavailable", str(exc)) from None
            raise _Refused(500, "broker_refused", str(exc)) from None
        self.metrics.ack_seconds.observe(time.perf_counter() - started)
        self.metrics.alerts.labels(ep.fmt).inc(len(alerts))
        return alerts

    def _parse(
        self, body: bytes, headers: dict[str, str], ep: Endpoint, request_id: str
    ) -> list[Alert]:
        try:
            alerts = self.parse(body, headers, ep.fmt, self.generic)
        except NormalizeError as exc:
            status = 422 if is_binary_cloudevent(headers) or _json_container(body) else 400
            self._reject(body, headers, ep, exc.error, str(exc), request_id)
            raise _Refused(status, exc.error, str(exc)) from None
        except (ValueError, TypeError) as exc:  # a parser's own check, not a NormalizeError
            self._reject(body, headers, ep, "invalid", str(exc), request_id)
            raise _Refused(422, "invalid", str(exc)) from None
        most = self.settings.max_alerts
        if len(alerts) > most:
            reason = f"the request carries {len(alerts)} alerts, more than {most}"
            self._reject(body, headers, ep, "too_many_alerts", reason, request_id)
            raise _Refused(413, "too_many_alerts", reason)
        return alerts

    def _check_sizes(
        self,
        records: list[Record],
        body: bytes,
        headers: dict[str, str],
        ep: Endpoint,
        request_id: str,
    ) -> None:
        most = self.topics.max_message_bytes
        for i, record in enumerate(records):
            if len(record.value) > most:
                reason = (
                    f"alert #{i} is {len(record.value)} bytes as canonical JSON, more than "
                    f"a message may be ({most})"
                )
                self._reject(body, headers, ep, "alert_too_large", reason, request_id)
                raise _Refused(413, "alert_too_large", reason)

    def _reject(
        self,
        body: bytes,
        headers: dict[str, str],
        ep: Endpoint,
        error: str,
        reason: str,
        request_id: str,
    ) -> None:
        """Count a refused body and dead-letter it in the background."""
        self.metrics.rejected.labels(ep.fmt, error).inc()
        log.info("request refused", endpoint=ep.path, error=error, reason=reason[:300])
        if len(body) > self.topics.max_message_bytes:
            self.metrics.dead_letters.labels("too_large").inc()
            return
        record = dead_letter_record(body, headers, ep.path, error, reason, request_id)
        task = asyncio.create_task(self._dead_letter(record))
        self._dead_letters.add(task)
        task.add_done_callback(self._dead_letters.discard)

    async def _dead_letter(self, record: Record) -> None:
        try:
            await deliver(self.sink, self.topics.dlq, [record], self.settings.delivery_timeout_s)
        except DeliveryFailed as exc:
            self.metrics.dead_letters.labels("failed").inc()
            log.warning("dead letter not stored", topic=self.topics.dlq, reason=str(exc))
        else:
            self.metrics.dead_letters.labels("sent").inc()

    async def drain(self) -> None:
        """Wait for dead letters still on their way (at shutdown)."""
        if self._dead_letters:
            await asyncio.wait(list(self._dead_letters))

    def _refusal(self, exc: _Refused, request_id: str) -> Response:
        headers = {"X-Request-Id": request_id}
        if exc.status == 503:
            headers["Retry-After"] = str(self.settings.retry_after_s)
        if exc.status >= 500:
            log.warning("request not stored", status=exc.status, reason=exc.reason)
        return JSONResponse(
            {"error": exc.error, "reason": exc.reason, "request_id": request_id},
            status_code=exc.status,
            headers=headers,
        )

    def _accepted(self, ep: Endpoint, alerts: list[Alert], request_id: str) -> Response:
        body: dict[str, Any] = {"status": "accepted", "alerts": len(alerts)}
        if ep.pagerduty:  # PagerDuty's Events API answer, which its clients read
            body = {"status": "success", "message": "Event processed"}
            keys = {a.labels["dedup_key"] for a in alerts if "dedup_key" in a.labels}
            if len(keys) == 1:
                body["dedup_key"] = keys.pop()
        body["request_id"] = request_id
        return JSONResponse(body, status_code=202, headers={"X-Request-Id": request_id})

    # --- health and metrics --------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        if "/healthz" not in self.settings.public_path_set:
            denied = self._unauthorized(request)
            if denied is not None:
                return denied
        health = await self.probe.health()
        status = 200 if health.ok else 503
        return JSONResponse(
            {"status": "ok" if health.ok else "unavailable", **health.detail}, status
        )

    async def metrics_page(self, request: Request) -> Response:
        if "/metrics" not in self.settings.public_path_set:
            denied = self._unauthorized(request)
            if denied is not None:
                return denied
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)


class Instrument:
    """ASGI middleware counting every HTTP request by endpoint and status, and timing it."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = path_label(scope["path"])
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.request_seconds.labels(endpoint).observe(time.perf_counter() - started)


Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def build_app(gateway: Gateway, lifespan: Lifespan | None = None) -> Starlette:
    routes = [Route(ep.path, gateway.endpoint(ep), methods=["POST"]) for ep in ENDPOINTS]
    routes.append(Route("/healthz", gateway.healthz, methods=["GET"]))
    routes.append(Route("/metrics", gateway.metrics_page, methods=["GET"]))
    middleware = [Middleware(Instrument, metrics=gateway.metrics)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
