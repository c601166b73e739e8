"""The gateway's HTTP behaviour against a fake producer: authentication, limits, status codes,
202 only after the broker acknowledged, 503 paths, keying, dead letters, metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx
import msgspec
import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry

from pipeline.app.publisher import Rejected
from pipeline.auth import TokenSet
from pipeline.config import GatewaySettings
from pipeline.domain.fingerprint import fingerprint
from pipeline.domain.normalize import GenericMapping, normalize, normalize_message
from pipeline.domain.schemas import Alert, DeadLetter
from pipeline.gateway.app import Gateway, Topics, build_app
from pipeline.gateway.health import BrokerProbe, Health
from pipeline.gateway.metrics import GatewayMetrics

TOKEN = "0123456789abcdef0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PD_TRIGGER = {
    "routing_key": TOKEN,
    "event_action": "trigger",
    "dedup_key": "disk-full-db1",
    "payload": {
        "summary": "disk full on db1",
        "source": "db1",
        "severity": "error",
        "component": "postgres",
        "timestamp": "2026-11-24T10:09:46Z",
    },
}
CANONICAL = {
    "id": "a-17",
    "source": "prometheus",
    "service": "checkoutservice",
    "name": "HighLatencyP99",
    "severity": "critical",
    "status": "firing",
    "timestamp": "2022-08-22T03:54:19Z",
    "labels": {"pod": "checkout-7f9c"},
}
CLOUDEVENT = {
    "specversion": "1.0",
    "id": "ce-1",
    "source": "/monitors/x",
    "type": "HighErrorRate",
    "subject": "cartservice",
    "time": "2026-11-24T10:09:46Z",
    "data": {"severity": "warning", "status": "firing"},
}


class FakeSink:
    """Records every message; settles each with ``outcome`` (None: acknowledged) unless
    ``hold``: then the test settles them."""

    def __init__(self, outcome: BaseException | None = None, hold: bool = False) -> None:
        self.outcome = outcome
        self.hold = hold
        self.sent: list[dict[str, Any]] = []
        self.pending: list[asyncio.Future[None]] = []

    async def send(
        self,
        *,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        topic: str | None = None,
    ) -> asyncio.Future[None]:
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": headers})
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.hold:
            self.pending.append(fut)
        elif self.outcome is None:
            fut.set_result(None)
        else:
            fut.set_exception(self.outcome)
        return fut

    def to(self, topic: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["topic"] == topic]


def make_gateway(
    sink: FakeSink,
    *,
    tokens: Sequence[str] | None = (TOKEN,),
    health: Health | None = None,
    parse: Any = normalize_message,
    **settings: Any,
) -> Gateway:
    gw = GatewaySettings(**{"delivery_timeout_s": 2.0, **settings})
    probe = BrokerProbe(lambda: health or Health(True, {"broker": "reachable"}))
    return Gateway(
        gw,
        Topics("alerts.raw", "alerts.dlq", 1_000_000),
        sink,
        probe,
        GatewayMetrics(CollectorRegistry()),
        TokenSet(tokens) if tokens is not None else None,
        parse=parse,
    )


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    def make(gateway: Gateway) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=build_app(gateway))
        client = httpx.AsyncClient(transport=transport, base_url="http://gateway")
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.aclose()


def webhook() -> bytes:
    return (FIXTURES / "webhook_1.json").read_bytes()


def sample(gateway: Gateway, name: str, labels: Mapping[str, str]) -> float:
    value = gateway.metrics.registry.get_sample_value(name, dict(labels))
    return value or 0.0


async def test_alertmanager_webhook_is_stored_as_canonical_alerts(client_for: Any) -> None:
    sink = FakeSink()
    gateway = make_gateway(sink)
    client = client_for(gateway)
    payload = json.loads(webhook())
    second = json.loads((FIXTURES / "webhook_2.json").read_bytes())["alerts"][0]
    payload["alerts"].append(second)
    resp = await client.post(
        "/v1/alerts/alertmanager",
        json=payload,
        headers={**AUTH, "User-Agent": "Alertmanager/0.25.0"},
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["alerts"] == 2
    assert resp.headers["X-Request-Id"] == resp.json()["request_id"]
    expected = normalize(json.dumps(payload).encode())
    stored = sink.to("alerts.raw")
    assert len(stored) == 2
    for message, alert in zip(stored, expected, strict=True):
        # the value is the canonical alert, which the worker's ingest reads back as is
        assert normalize(message["value"]) == [alert]
        # keyed by the series fingerprint: one series stays in one partition, in order
        assert message["key"] == fingerprint(alert).encode()
        headers = dict(message["headers"])
        assert headers["stormwatch-received-as"] == b"alertmanager"
        assert headers["stormwatch-request-id"] == resp.json()["request_id"].encode()
    assert sample(gateway, "stormwatch_gateway_alerts_total", {"format": "alertmanager"}) == 2
    assert (
        sample(
            gateway,
            "stormwatch_gateway_requests_total",
            {"endpoint": "/v1/alerts/alertmanager", "status": "202"},
        )
        == 1
    )


async def test_firing_and_resolve_of_one_series_share_a_key(client_for: Any) -> None:
    sink = FakeSink()
    client = client_for(make_gateway(sink))
    firing = json.loads(webhook())
    resolved = json.loads(webhook())
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2026-11-24T10:19:46Z"
    for body in (firing, resolved):
        assert (
            await client.post("/v1/alerts/alertmanager", json=body, headers=AUTH)
        ).status_code == 202
    first, second = sink.to("alerts.raw")
    assert first["key"] == second["key"]
    assert first["value"] != second["value"]


async def test_202_only_after_the_broker_acknowledged(client_for: Any) -> None:
    sink = FakeSink(hold=True)
    client = client_for(make_gateway(sink))
    request = asyncio.create_task(
        client.post(
            "/v1/alerts/alertmanager",
            content=webhook(),
            headers={**AUTH, "Content-Type": "application/json"},
        )
    )
    for _ in range(200):
        if sink.pending:
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    assert sink.pending and not request.done()  # produced, not acknowledged: no answer yet
    for fut in sink.pending:
        fut.set_result(None)
    resp = await asyncio.wait_for(request, 5)
    assert resp.status_code == 202


async def test_ack_timeout_is_503_with_retry_after(client_for: Any) -> None:
    sink = FakeSink(hold=True)
    gateway = make_gateway(sink, delivery_timeout_s=0.2, retry_after_s=7)
    resp = await client_for(gateway).post(
        "/v1/alerts/alertmanager",
        content=webhook(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "7"
    assert resp.json()["error"] == "broker_unavailable"
    assert "did not acknowledge within 0.2 s" in resp.json()["reason"]
    assert sample(gateway, "stormwatch_gateway_alerts_total", {"format": "alertmanager"}) == 0
    for fut in sink.pending:  # a late acknowledgement after the answer is harmless
        fut.set_result(None)


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT)), 503),
        (KafkaException(KafkaError(KafkaError._TRANSPORT)), 503),
        (Rejected(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)), 413),
        (Rejected(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)), 500),
    ],
)
async def test_broker_failures(client_for: Any, outcome: BaseException, status: int) -> None:
    resp = await client_for(make_gateway(FakeSink(outcome))).post(
        "/v1/alerts/alertmanager",
        content=webhook(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert resp.status_code == status
    assert ("Retry-After" in resp.headers) == (status == 503)
    assert resp.json()["reason"].startswith("the broker")


async def test_authentication(client_for: Any) -> None:
    sink = FakeSink()
    client = client_for(make_gateway(sink))
    resp = await client.post("/v1/alerts/alertmanager", content=webhook())
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="stormwatch"'
    resp = await client.post(
        "/v1/alerts/alertmanager",
        content=webhook(),
        headers={"Authorization": "Bearer " + "x" * 32},
    )
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    assert TOKEN not in resp.text
    resp = await client.post(
        "/v1/alerts/alertmanager", content=webhook(), headers={"Authorization": f"Basic {TOKEN}"}
    )
    assert resp.status_code == 401
    assert sink.sent == []  # nothing produced, nothing dead-lettered
    # health and metrics stay open by default
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200


async def test_metrics_and_health_can_require_a_token(client_for: Any) -> None:
    client = client_for(make_gateway(FakeSink(), public_paths="/healthz"))
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=AUTH)).status_code == 200
    client = client_for(make_gateway(FakeSink(), public_paths=""))
    assert (await client.get("/healthz")).status_code == 401


async def test_insecure_mode_needs_no_token(client_for: Any) -> None:
    client = client_for(make_gateway(FakeSink(), tokens=None))
    resp = await client.post("/v1/alerts/canonical", json=CANONICAL)
    assert resp.status_code == 202


async def test_pagerduty_endpoints_answer_like_pagerduty(client_for: Any) -> None:
    sink = FakeSink()
    client = client_for(make_gateway(sink))
    for path in ("/v1/alerts/pagerduty", "/v2/enqueue"):
        resp = await client.post(path, json=PD_TRIGGER, headers=AUTH)
        assert resp.status_code == 202, resp.text
        body = resp.json()
        assert (body["status"], body["message"], body["dedup_key"]) == (
            "success",
            "Event processed",
            "disk-full-db1",
        )
    [first, second] = sink.to("alerts.raw")
    assert first["key"] == second["key"]
    assert msgspec.json.decode(first["value"], type=Alert).service == "postgres"


async def test_pagerduty_routing_key_may_carry_the_token(client_for: Any) -> None:
    sink = FakeSink()
    client = client_for(make_gateway(sink))
    resp = await client.post("/v2/enqueue", json=PD_TRIGGER)  # no Authorization header
    assert resp.status_code == 202
    resp = await client.post("/v2/enqueue", json={**PD_TRIGGER, "routing_key": "y" * 32})
    assert resp.status_code == 401
    resp = await client.post("/v1/alerts/alertmanager", json={"routing_key": TOKEN})
    assert resp.status_code == 401  # only on the PagerDuty endpoints
    client = client_for(make_gateway(FakeSink(), pagerduty_routing_key_auth=False))
    assert (await client.post("/v2/enqueue", json=PD_TRIGGER)).status_code == 401
    assert len(sink.sent) == 1


async def test_cloudevents_structured_and_batch(client_for: Any) -> None:
    sink = FakeSink()
    client = client_for(make_gateway(sink))
    structured = {**AUTH, "Content-Type": "application/cloudevents+json; charset=utf-8"}
    resp = await client.post(
        "/v1/alerts/cloudevents", content=json.dumps(CLOUDEVENT), headers=structured
    )
    assert resp.status_code == 202, resp.text
    batch = {**AUTH, "Content-Type": "application/cloudevents-batch+json"}
    events = [CLOUDEVENT, {**CLOUDEVENT, "id": "ce-2", "subject": "frontend"}]
    resp = await client.post("/v1/alerts/cloudevents", content=json.dumps(events), headers=batch)
    assert resp.status_code == 202 and resp.json()["alerts"] == 2
    services = [msgspec.json.decode(m["value"], type=Alert).service for m in sink.sent]
    assert services == ["cartservice", "cartservice", "frontend"]


async def test_parser_gets_content_type_and_ce_headers_only(client_for: Any) -> None:
    seen: list[tuple[Mapping[str, str], str]] = []

    def parse(raw: bytes, headers: Mapping[str, str], fmt: str, generic: Any) -> list[Alert]:
        seen.append((dict(headers), fmt))
        return normalize(json.dumps(CANONICAL).encode())

    client = client_for(make_gateway(FakeSink(), parse=parse))
    headers = {
        **AUTH,
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "ce-9",
        "ce-type": "HighErrorRate",
        "ce-source": "/monitors/x",
        "X-Forwarded-For": "10.0.0.1",
    }
    resp = await client.post(
        "/v1/alerts/cloudevents", content=b'{"severity": "warning"}', headers=headers
    )
    assert resp.status_code == 202
    [(got, fmt)] = seen
    assert fmt == "cloudevents"
    assert got == {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "ce-9",
        "ce-type": "HighErrorRate",
        "ce-source": "/monitors/x",
    }


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "error"),
    [
        ("/v1/alerts/alertmanager", b"{not json", {"Content-Type": "application/json"}, 400, ""),
        ("/v1/alerts/alertmanager", b"42", {"Content-Type": "application/json"}, 400, ""),
        # valid JSON, but not an Alertmanager webhook
        (
            "/v1/alerts/alertmanager",
            json.dumps(PD_TRIGGER).encode(),
            {"Content-Type": "application/json"},
            422,
            "",
        ),
        ("/v1/alerts/pagerduty", webhook(), {"Content-Type": "application/json"}, 422, ""),
        (
            "/v1/alerts/canonical",
            json.dumps({**CANONICAL, "severity": "apocalyptic"}).encode(),
            {"Content-Type": "application/json"},
            422,
            "",
        ),
        (
            "/v1/alerts/alertmanager",
            webhook(),
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        ("/v1/alerts/alertmanager", webhook(), {}, 415, "unsupported_media_type"),
        (
            "/v1/alerts/alertmanager",
            webhook(),
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            415,
            "unsupported_media_type",
        ),
        # binary mode: any data type, but the attributes must be complete
        (
            "/v1/alerts/cloudevents",
            b"<xml/>",
            {"Content-Type": "text/xml", "ce-specversion": "1.0"},
            422,
            "",
        ),
    ],
)
async def test_bad_input_is_a_4xx_with_the_reason(
    client_for: Any, path: str, body: bytes, headers: dict[str, str], status: int, error: str
) -> None:
    sink = FakeSink()
    gateway = make_gateway(sink)
    resp = await client_for(gateway).post(path, content=body, headers={**AUTH, **headers})
    assert resp.status_code == status, resp.text
    assert resp.json()["reason"]
    if error:  # the gateway's own error classes (the parsers name theirs)
        assert resp.json()["error"] == error
    assert sink.to("alerts.raw") == []
    if status in (400, 422):  # a refused body is dead-lettered with the reason
        await gateway.drain()
        [letter] = sink.to("alerts.dlq")
        assert letter["value"] == body and letter["key"] is None
        meta = DeadLetter.from_headers(letter["headers"])
        assert (meta.stage, meta.source_topic) == ("gateway", f"http:{path}")
        assert meta.error == resp.json()["error"]
        assert meta.reason == resp.json()["reason"]
        assert sample(gateway, "stormwatch_gateway_dead_letters_total", {"outcome": "sent"}) == 1


async def test_binary_cloudevent_dead_letter_keeps_its_attributes(client_for: Any) -> None:
    sink = FakeSink()
    headers = {**AUTH, "Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "x"}

    def refuse(raw: bytes, h: Mapping[str, str], fmt: str, generic: Any) -> list[Alert]:
        from pipeline.domain.normalize import NormalizeError

        raise NormalizeError("cloudevent 'x': type is missing")

    client = client_for(make_gateway(sink, parse=refuse))
    resp = await client.post("/v1/alerts/cloudevents", content=b"{}", headers=headers)
    assert resp.status_code == 422
    await asyncio.sleep(0.05)
    [letter] = sink.to("alerts.dlq")
    h = dict(letter["headers"])
    assert h["ce_specversion"] == b"1.0" and h["ce_id"] == b"x"
    assert h["content-type"] == b"application/json"
    assert "authorization" not in h


async def test_limits(client_for: Any) -> None:
    sink = FakeSink()
    client = client_for(make_gateway(sink, max_body_bytes=2048, max_alerts=2))
    resp = await client.post(
        "/v1/alerts/alertmanager",
        content=b" " * 4096,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert resp.status_code == 413 and resp.json()["error"] == "body_too_large"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(10):
            yield b" " * 1024

    resp = await client.post(
        "/v1/alerts/alertmanager",
        content=chunked(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert resp.status_code == 413 and resp.json()["error"] == "body_too_large"
    three = [CANONICAL, {**CANONICAL, "id": "a-18"}, {**CANONICAL, "id": "a-19"}]
    resp = await client.post("/v1/alerts/canonical", json=three, headers=AUTH)
    assert resp.status_code == 413 and resp.json()["error"] == "too_many_alerts"
    assert "3 alerts, more than 2" in resp.json()["reason"]
    assert sink.to("alerts.raw") == []
    resp = await client.post("/v1/alerts/canonical", json=three[:2], headers=AUTH)
    assert resp.status_code == 202


async def test_an_alert_bigger_than_a_message_is_413(client_for: Any) -> None:
    sink = FakeSink()
    gateway = make_gateway(sink)
    gateway.topics = Topics("alerts.raw", "alerts.dlq", 4096)
    huge = {**CANONICAL, "annotations": {"description": "x" * 5000}}
    resp = await client_for(gateway).post("/v1/alerts/canonical", json=huge, headers=AUTH)
    assert resp.status_code == 413 and resp.json()["error"] == "alert_too_large"
    assert sink.sent == []  # neither produced nor (bigger than a message) dead-lettered
    assert sample(gateway, "stormwatch_gateway_dead_letters_total", {"outcome": "too_large"}) == 1


SAMPLES = FIXTURES / "formats"


def _generic(name: str) -> GenericMapping:
    from pipeline.config import load_generic_mapping

    return load_generic_mapping(SAMPLES / name)


@pytest.mark.parametrize(
    ("path", "sample", "mapping"),
    [
        ("/v1/alerts/alertmanager", "alertmanager-firing.json", None),
        ("/v1/alerts/alertmanager", "alertmanager-resolved.json", None),
        ("/v1/alerts/grafana", "grafana-firing.json", None),
        ("/v1/alerts/grafana", "grafana-resolved.json", None),
        ("/v2/enqueue", "pagerduty-alertmanager-trigger.json", None),
        ("/v2/enqueue", "pagerduty-alertmanager-resolve.json", None),
        ("/v1/alerts/pagerduty", "pagerduty-trigger.json", None),
        ("/v1/alerts/pagerduty", "pagerduty-resolve.json", None),
        ("/v2/change/enqueue", "pagerduty-change.json", None),
        ("/v1/alerts/cloudevents", "cloudevents-structured.json", None),
        ("/v1/alerts/cloudevents", "cloudevents-binary-http.json", None),
        ("/v1/alerts/generic", "generic-datadog-triggered.json", "generic-datadog.yaml"),
        ("/v1/alerts/generic", "generic-zabbix-resolved.json", "generic-zabbix.yaml"),
    ],
)
async def test_every_format_is_stored_as_the_alerts_its_parser_reads(
    client_for: Any, path: str, sample: str, mapping: str | None
) -> None:
    """Each real-shaped sample, posted to its endpoint, is stored as the canonical alerts
    the format's parser makes of it; the worker reads each message back as that alert."""
    obj = json.loads((SAMPLES / sample).read_bytes())
    headers = {**AUTH, "Content-Type": "application/json"}
    if "headers" in obj:  # a binary-mode CloudEvent: attributes in ce- headers
        headers = {**AUTH, **obj["headers"]}
        body = obj["body"].encode() if "body" in obj else json.dumps(obj["value"]).encode()
    else:
        body = json.dumps(obj).encode()
    if sample.startswith("cloudevents-structured"):
        headers["Content-Type"] = "application/cloudevents+json"
    generic = _generic(mapping) if mapping else None
    parsed: list[Alert] = []

    def parse(raw: bytes, h: Mapping[str, str], fmt: str, g: Any) -> list[Alert]:
        assert (fmt, g) == (gateway_fmt(path), generic)
        parsed.extend(normalize_message(raw, h, fmt, g))
        return parsed

    sink = FakeSink()
    gateway = make_gateway(sink, parse=parse)
    gateway.generic = generic
    resp = await client_for(gateway).post(path, content=body, headers=headers)
    assert resp.status_code == 202, resp.text
    expected = parsed
    stored = sink.to("alerts.raw")
    assert resp.json().get("alerts", len(stored)) == len(expected) == len(stored) >= 1
    for message, alert in zip(stored, expected, strict=True):
        assert normalize_message(message["value"], dict(message["headers"])) == [alert]
        assert message["key"] == fingerprint(alert).encode()
        assert dict(message["headers"])["stormwatch-format"] == b"canonical"


def gateway_fmt(path: str) -> str:
    from pipeline.gateway.endpoints import ENDPOINTS

    return next(e.fmt for e in ENDPOINTS if e.path == path)


async def test_a_payload_the_format_refuses_is_422_with_its_reason(client_for: Any) -> None:
    client = client_for(make_gateway(FakeSink()))
    pagerduty = (SAMPLES / "pagerduty-trigger.json").read_bytes()
    json_headers = {**AUTH, "Content-Type": "application/json"}
    resp = await client.post("/v1/alerts/alertmanager", content=pagerduty, headers=json_headers)
    assert resp.status_code == 422 and resp.json()["reason"]
    bare = (SAMPLES / "pagerduty-resolve-bare.json").read_bytes()  # names no service
    resp = await client.post("/v2/enqueue", content=bare, headers=json_headers)
    assert resp.status_code == 422 and "dedup_key" in resp.json()["reason"]
    resp = await client.post("/v1/alerts/generic", json={"title": "x"}, headers=AUTH)
    assert resp.status_code == 422  # no generic mapping configured


async def test_health_reports_the_broker(client_for: Any) -> None:
    down = Health(False, {"broker": "unreachable: _TRANSPORT"})
    client = client_for(make_gateway(FakeSink(), health=down))
    resp = await client.get("/healthz")
    assert resp.status_code == 503
    assert resp.json() == {"status": "unavailable", "broker": "unreachable: _TRANSPORT"}


async def test_metrics_page_and_bounded_labels(client_for: Any) -> None:
    gateway = make_gateway(FakeSink())
    client = client_for(gateway)
    await client.post(
        "/v1/alerts/alertmanager",
        content=webhook(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    for i in range(3):
        await client.get(f"/random/{i}")
    await client.get("/v1/alerts/alertmanager")  # wrong method
    text = (await client.get("/metrics")).text
    assert 'stormwatch_gateway_requests_total{endpoint="other",status="404"} 3.0' in text
    assert 'endpoint="/v1/alerts/alertmanager",status="405"' in text
    assert "stormwatch_gateway_broker_ack_seconds_count 1.0" in text
    assert 'stormwatch_gateway_payload_bytes_count{format="alertmanager"} 1.0' in text
    assert "/random" not in text


class _StubPublisher:
    """Stands in for the confluent-kafka publisher: the first one made is broken for good."""

    made: ClassVar[list[_StubPublisher]] = []

    def __init__(self, *args: Any) -> None:
        self.fatal: KafkaError | None = None
        self.closed = False
        self.sent = 0
        _StubPublisher.made.append(self)

    async def send(self, **kwargs: Any) -> asyncio.Future[None]:
        if self is _StubPublisher.made[0]:
            raise KafkaException(KafkaError(KafkaError._FATAL))
        self.sent += 1
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def close(self, timeout_s: float) -> int:
        self.closed = True
        return 0


async def test_a_fatal_producer_error_starts_a_new_producer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.gateway import sink as sink_module

    monkeypatch.setattr(sink_module, "Publisher", _StubPublisher)
    _StubPublisher.made = []
    sink = sink_module.KafkaSink({}, "alerts.raw", delivery_timeout_s=1, max_message_bytes=10**6)
    fut = await sink.send(key=b"k", value=b"v")  # produce() refuses: fatal
    await fut
    first, second = _StubPublisher.made
    assert second.sent == 1
    second.fatal = KafkaError(KafkaError.UNKNOWN_PRODUCER_ID)  # as the poller records it
    await sink.send(key=b"k", value=b"v")
    assert len(_StubPublisher.made) == 3 and _StubPublisher.made[2].sent == 1
    await asyncio.sleep(0.05)
    assert first.closed and second.closed
