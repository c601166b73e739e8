"""The HTTP ingest gateway (``stormwatch ingest`` as a child process) on the real Tansu broker:
an Alertmanager webhook posted with a bearer token is read back from ``alerts.raw`` with
confluent-kafka; a stopped broker is answered 503 with Retry-After; gateway -> worker ->
``incidents`` end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest

from pipeline.app.localstack import Service, free_port, start_broker
from pipeline.domain.fingerprint import fingerprint
from pipeline.domain.normalize import normalize
from pipeline.domain.schemas import Alert, DeadLetter, IncidentEvent
from tests.integration.conftest import ROOT, Stack, collect, wait_for

TOKEN = "c0ffee" * 6


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    url: str

    def post(self, path: str, body: bytes, token: str | None = TOKEN) -> httpx.Response:
        headers = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.post(self.url + path, content=body, headers=headers, timeout=30)

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[list[Gateway]]:
    started: list[Gateway] = []
    yield started
    for gw in started:
        gw.stop()


def start_gateway(
    started: list[Gateway], tmp_path: Path, bootstrap: str, ns: str, **gateway: str
) -> Gateway:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# stormwatch gateway tokens\n{TOKEN}\n")
    port = free_port()
    env = {
        **os.environ,
        "STORMWATCH_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "STORMWATCH_TOPICS__ALERTS_RAW": f"{ns}.alerts.raw",
        "STORMWATCH_TOPICS__DLQ": f"{ns}.alerts.dlq",
        "STORMWATCH_TOPICS__PARTITIONS": "2",
        "STORMWATCH_LOG_LEVEL": "warning",
        **{f"STORMWATCH_GATEWAY__{k.upper()}": v for k, v in gateway.items()},
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "ingest",
            "--port",
            str(port),
            "--token-file",
            str(tokens),
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    gw = Gateway(proc, f"http://127.0.0.1:{port}")
    started.append(gw)
    wait_for(gw.healthy, 60, "gateway /healthz", proc)
    return gw


def test_alertmanager_webhook_reaches_alerts_raw(
    stack: Stack, tmp_path: Path, fixtures: Path, gateways: list[Gateway]
) -> None:
    gw = start_gateway(gateways, tmp_path, stack.bootstrap, stack.ns)
    raw = stack.consumer("alerts.raw")
    bodies = [(fixtures / name).read_bytes() for name in ("webhook_1.json", "webhook_2.json")]
    assert gw.post("/v1/alerts/alertmanager", bodies[0], token=None).status_code == 401
    assert gw.post("/v1/alerts/alertmanager", bodies[0], token="f" * 36).status_code == 401
    for body in bodies:
        resp = gw.post("/v1/alerts/alertmanager", body)
        assert resp.status_code == 202, resp.text
    messages = collect(raw, lambda seen: len(seen) >= 2, 30)
    expected = [a for body in bodies for a in normalize(body)]
    got = sorted(messages, key=lambda m: msgspec.json.decode(m.value(), type=Alert).id)
    for message, alert in zip(got, sorted(expected, key=lambda a: a.id), strict=True):
        assert normalize(message.value()) == [alert]
        assert message.key() == fingerprint(alert).encode()
        assert dict(message.headers())["stormwatch-received-as"] == b"alertmanager"
    # the gateway created the topic with the configured partitions, not the broker's default
    meta = raw.list_topics(stack.topic("alerts.raw"), timeout=10).topics[stack.topic("alerts.raw")]
    assert len(meta.partitions) == 2

    # a body that is no Alertmanager webhook: 422 with the reason, and dead-lettered
    dlq = stack.consumer("alerts.dlq")
    bad = json.dumps({"receiver": "hook", "version": "4", "alerts": "none"}).encode()
    resp = gw.post("/v1/alerts/alertmanager", bad)
    assert resp.status_code == 422 and "alerts" in resp.json()["reason"]
    [letter] = collect(dlq, lambda seen: len(seen) >= 1, 30)
    assert letter.value() == bad
    assert DeadLetter.from_headers(letter.headers()).source_topic == "http:/v1/alerts/alertmanager"

    metrics = httpx.get(gw.url + "/metrics", timeout=5).text
    assert 'stormwatch_gateway_alerts_total{format="alertmanager"} 2.0' in metrics
    assert (
        'stormwatch_gateway_requests_total{endpoint="/v1/alerts/alertmanager",status="401"} 2.0'
        in metrics
    )
    assert TOKEN not in metrics
    started = time.monotonic()
    assert gw.stop() == 0  # SIGTERM: graceful, the producer flushed
    assert time.monotonic() - started < 15


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Service]:
    """A broker of this test only: it is stopped half-way."""
    service = start_broker(log_path=tmp_path / "tansu.log")
    yield service
    service.stop()


def test_broker_down_is_503_with_retry_after(
    own_broker: Service, tmp_path: Path, fixtures: Path, gateways: list[Gateway]
) -> None:
    gw = start_gateway(
        gateways, tmp_path, own_broker.url, "down", delivery_timeout_s="3", retry_after_s="2"
    )
    body = (fixtures / "webhook_1.json").read_bytes()
    assert gw.post("/v1/alerts/alertmanager", body).status_code == 202
    own_broker.stop()
    started = time.monotonic()
    resp = gw.post("/v1/alerts/alertmanager", body)
    assert resp.status_code == 503, resp.text
    assert resp.headers["Retry-After"] == "2"
    assert resp.json()["error"] == "broker_unavailable"
    assert time.monotonic() - started < 10  # bounded by the delivery timeout
    wait_for(lambda: httpx.get(gw.url + "/healthz", timeout=10).status_code == 503, 20, "503")
    assert gw.proc.poll() is None  # the gateway itself stays up

    # a broker back on the same address (empty: Tansu keeps topics in memory) is used again
    back = start_broker(own_broker.port, log_path=tmp_path / "tansu-2.log")
    try:
        wait_for(
            lambda: gw.post("/v1/alerts/alertmanager", body).status_code == 202,
            60,
            "202 after the broker is back",
            gw.proc,
        )
    finally:
        back.stop()


def test_gateway_to_worker_to_incidents(
    stack: Stack, tmp_path: Path, fixtures: Path, gateways: list[Gateway]
) -> None:
    gw = start_gateway(gateways, tmp_path, stack.bootstrap, stack.ns)
    stack.start_worker()
    incidents = stack.consumer("incidents")
    for name in ("webhook_1.json", "webhook_2.json"):
        assert gw.post("/v1/alerts/alertmanager", (fixtures / name).read_bytes()).status_code == 202
    decode = msgspec.json.Decoder(IncidentEvent).decode

    def grouped(seen: list) -> bool:
        return any(len(decode(m.value()).incident.alert_ids) == 2 for m in seen)

    messages = collect(incidents, grouped, 60)
    final = decode(messages[-1].value()).incident
    assert sorted(final.services) == ["checkoutservice", "frontend"]
    assert final.root_cause == "checkoutservice"
