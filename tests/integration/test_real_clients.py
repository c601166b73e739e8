"""stormwatch against the real clients its users run, end to end on the real Tansu broker,
redis-server, a worker and the ingest gateway (``stormwatch ingest``), all child processes:

* **Alertmanager 0.25** (Debian ``prometheus-alertmanager``): alerts posted to its API are
  sent by its webhook notifier, bearer token read from ``credentials_file``, to the gateway,
  which writes them to ``alerts.raw``; the worker turns them into one incident on
  ``incidents``; resolved in Alertmanager, its resolved notifications close the incident.
* **Prometheus 2.42** (Debian ``prometheus``): scrapes the worker's and the gateway's
  ``/metrics`` with the project's alerting rules loaded.
* **kcat** (Debian ``kcat``): produces a canonical alert and a malformed message to
  ``alerts.raw``, reads the incident from ``incidents`` and the dead letter, with its reason
  headers, from ``alerts.dlq``.

The binaries are installed with apt-get when missing. A failure names the hop that failed.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import msgspec
import pytest
from confluent_kafka import Consumer, Message
from prometheus_client.parser import text_string_to_metric_families

from pipeline.domain.schemas import Alert, EventType, IncidentEvent
from tests.integration.alertmanager import Alertmanager, start_alertmanager
from tests.integration.conftest import Stack
from tests.integration.kcat import kcat, kcat_version
from tests.integration.prometheus import Prometheus
from tests.integration.test_gateway import TOKEN, Gateway, gateways, start_gateway

__all__ = ["gateways"]  # a fixture of test_gateway, used here

T = TypeVar("T")
AM_PATH = "/v1/alerts/alertmanager"
decode_event = msgspec.json.Decoder(IncidentEvent).decode

#: a storm on the online-boutique topology: frontend calls checkoutservice, which calls
#: paymentservice; they correlate into one incident
STORM = [
    ("frontend", "HighLatency", "warning"),
    ("checkoutservice", "HighErrorRate", "critical"),
    ("paymentservice", "ServiceDown", "critical"),
]


def hop(
    name: str,
    check: Callable[[], T | None],
    timeout: float,
    procs: dict[str, subprocess.Popen[bytes]],
    detail: Callable[[], str] = lambda: "",
) -> T:
    """Poll ``check`` until it returns something true; fail naming the hop ``name`` (and
    ``detail()``, what was seen) after ``timeout`` s, or at once when a process exits."""
    deadline = time.monotonic() + timeout
    while True:
        for what, proc in procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name}: {what} exited ({proc.returncode}). {detail()}", pytrace=False)
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{name}: nothing after {timeout:.0f} s. {detail()}", pytrace=False)
        time.sleep(0.2)


class Reader:
    """One topic as read so far by a consumer of the stack."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.messages: list[Message] = []

    def poll(self) -> Reader:
        """Take in whatever the consumer has within a short while."""
        for _ in range(50):
            msg = self.consumer.poll(0.1)
            if msg is None:
                break
            if not msg.error():
                self.messages.append(msg)
        return self

    def alerts(self) -> list[Alert]:
        return [msgspec.json.decode(m.value() or b"", type=Alert) for m in self.messages]

    def events(self) -> list[IncidentEvent]:
        return [decode_event(m.value() or b"") for m in self.messages]


def gateway_counts(gw: Gateway, family: str, **labels: str) -> dict[str, float]:
    """Samples of the gateway's counter ``family`` (without ``_total``) matching ``labels``,
    by their label set (rendered ``k=v,...``)."""
    text = httpx.get(gw.url + "/metrics", timeout=5).text
    return {
        ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        if f.name == family
        for s in f.samples
        if s.name == f"{family}_total" and labels.items() <= s.labels.items() and s.value
    }


@pytest.fixture
def alertmanager_to_gateway(
    tmp_path: Path, stack: Stack, gateways: list[Gateway]
) -> Iterator[tuple[Alertmanager, Gateway]]:
    """The gateway on the stack's topics, and an Alertmanager whose only receiver is the
    gateway's Alertmanager endpoint, its token in ``credentials_file`` (the token alone)."""
    gw = start_gateway(gateways, tmp_path, stack.bootstrap, stack.ns)
    token_file = tmp_path / "alertmanager-token"
    token_file.write_text(TOKEN)
    config = {
        "route": {
            "receiver": "stormwatch",
            "group_by": ["alertname", "service"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "stormwatch",
                "webhook_configs": [
                    {
                        "url": gw.url + AM_PATH,
                        "send_resolved": True,
                        "max_alerts": 0,
                        "http_config": {
                            "authorization": {
                                "type": "Bearer",
                                "credentials_file": str(token_file),
                            }
                        },
                    }
                ],
            }
        ],
    }
    am = start_alertmanager(tmp_path / "alertmanager", config)
    yield am, gw
    am.stop()


def test_alertmanager_webhook_through_gateway_and_worker_to_an_incident(
    stack: Stack, alertmanager_to_gateway: tuple[Alertmanager, Gateway]
) -> None:
    am, gw = alertmanager_to_gateway
    # live alerts: the wall clock, as deployed (the tests' default is the event clock, for
    # replayed storms); incidents resolve 2 s after their last alert resolved (default 120 s)
    worker = stack.start_worker(
        clock="wall", extra_env={"STORMWATCH_CORRELATION__QUIET_PERIOD_S": "2"}
    )
    procs = {"gateway": gw.proc, "worker": worker, "alertmanager": am.proc}
    raw = Reader(stack.consumer("alerts.raw"))
    incidents = Reader(stack.consumer("incidents"))
    run = uuid.uuid4().hex[:8]
    started = time.monotonic()
    storm = [
        {
            "labels": {"alertname": name, "service": service, "severity": sev, "run": run},
            "annotations": {"summary": f"{name} on {service}"},
            "generatorURL": "http://prometheus.example.com/graph",
        }
        for service, name, sev in STORM
    ]
    am.post_alerts(storm)  # startsAt: now
    services = {service for service, _, _ in STORM}

    # hop 1: Alertmanager holds the alerts
    hop(
        "hop 1 (test -> Alertmanager API)",
        lambda: len([a for a in am.alerts() if a["labels"].get("run") == run]) == len(STORM),
        10,
        procs,
        lambda: f"Alertmanager holds {am.alerts()}",
    )

    # hop 2: its webhook notifier reached the gateway, which answered 202 to every request
    def notified() -> bool:
        accepted = gateway_counts(gw, "stormwatch_gateway_alerts", format="alertmanager")
        return sum(accepted.values()) >= len(STORM)

    hop(
        "hop 2 (Alertmanager webhook -> gateway)",
        notified,
        30,
        procs,
        lambda: (
            f"Alertmanager sent {am.counter('alertmanager_notifications', integration='webhook')}"
            f" webhooks, {am.counter('alertmanager_notifications_failed', integration='webhook')}"
            f" failed; gateway answered "
            f"{gateway_counts(gw, 'stormwatch_gateway_requests', endpoint=AM_PATH)}; "
            f"Alertmanager log: {am.tail()}"
        ),
    )
    statuses = gateway_counts(gw, "stormwatch_gateway_requests", endpoint=AM_PATH)
    assert statuses.get(f"endpoint={AM_PATH},status=202", 0) > 0, statuses
    assert set(statuses) == {f"endpoint={AM_PATH},status=202"}, f"not only 202s: {statuses}"
    assert am.counter("alertmanager_notifications_failed", integration="webhook") == 0
    assert am.counter("alertmanager_notifications", integration="webhook") >= 1

    # hop 3: the gateway wrote one canonical alert per Alertmanager alert to alerts.raw
    hop(
        "hop 3 (gateway -> alerts.raw)",
        lambda: {a.service for a in raw.poll().alerts() if a.labels.get("run") == run} == services,
        30,
        procs,
        lambda: f"alerts.raw has {[(a.service, a.name) for a in raw.alerts()]}",
    )
    alert_ids = {a.id for a in raw.alerts()}
    assert len(alert_ids) == len(STORM), f"not one message per alert: {raw.alerts()}"
    for message in raw.messages:
        headers = dict(message.headers() or [])
        assert headers["stormwatch-received-as"] == b"alertmanager", headers
    assert {a.source for a in raw.alerts()} == {"alertmanager"}

    # hop 4: the worker correlated them into one incident on `incidents`
    def correlated() -> IncidentEvent | None:
        events = incidents.poll().events()
        return next((ev for ev in events if set(ev.incident.services) == services), None)

    event = hop(
        "hop 4 (alerts.raw -> worker -> incidents)",
        correlated,
        60,
        procs,
        lambda: (
            f"incident events seen: {[(e.type, e.incident.services) for e in incidents.events()]}"
        ),
    )
    incident = event.incident
    assert set(incident.alert_ids) == alert_ids
    assert incident.root_cause in services
    opened_s = time.monotonic() - started

    # hop 5: resolved in Alertmanager, its resolved notifications close the incident
    ended = (datetime.now(tz=UTC) - timedelta(seconds=1)).isoformat()
    am.post_alerts([{**alert, "endsAt": ended} for alert in storm])

    def closed() -> IncidentEvent | None:
        mine = [ev for ev in incidents.poll().events() if ev.incident.id == incident.id]
        return next((ev for ev in mine if ev.type == EventType.resolved), None)

    resolved = hop(
        "hop 5 (Alertmanager resolved webhook -> gateway -> worker -> incident resolved)",
        closed,
        60,
        procs,
        lambda: (
            f"events of {incident.id}: "
            + str([e.type for e in incidents.events() if e.incident.id == incident.id])
            + f"; gateway took {gateway_counts(gw, 'stormwatch_gateway_alerts')}"
        ),
    )
    assert set(resolved.incident.alert_ids) == alert_ids

    # the resolves went through alerts.raw keyed by the series of the alerts they close
    # (same fingerprint, same partition: a resolve never overtakes its firing)
    def keys(status: str) -> set[bytes | None]:
        pairs = zip(raw.messages, raw.alerts(), strict=True)
        return {m.key() for m, a in pairs if a.status == status}

    hop(
        "hop 5 (gateway -> alerts.raw, resolves)",
        lambda: raw.poll() and len(keys("resolved")) == len(STORM),
        10,
        procs,
        lambda: f"alerts.raw has {[(a.id, a.status) for a in raw.alerts()]}",
    )
    assert keys("resolved") == keys("firing")
    print(
        f"\nAlertmanager -> incident in {opened_s:.1f} s, resolved after "
        f"{time.monotonic() - started:.1f} s: {incident.id} root cause {incident.root_cause}, "
        f"services {sorted(incident.services)}"
    )


def test_prometheus_scrapes_the_worker_and_the_gateway(
    stack: Stack,
    tmp_path: Path,
    fixtures: Path,
    gateways: list[Gateway],
    prometheus_server: Prometheus,
) -> None:
    prom = prometheus_server
    gw = start_gateway(gateways, tmp_path, stack.bootstrap, stack.ns)
    worker = stack.start_worker()
    gw_target = gw.url.removeprefix("http://")
    prom.scrape("stormwatch-worker", [f"127.0.0.1:{stack.web_port}"])
    prom.scrape("stormwatch-gateway", [gw_target])
    incidents = Reader(stack.consumer("incidents"))
    for name in ("webhook_1.json", "webhook_2.json"):
        resp = gw.post(AM_PATH, (fixtures / name).read_bytes())
        assert resp.status_code == 202, f"gateway refused {name}: {resp.text}"

    # both targets scraped successfully, as /api/v1/targets reports them
    for job, url in (
        ("stormwatch-worker", f"http://127.0.0.1:{stack.web_port}/metrics"),
        ("stormwatch-gateway", f"{gw.url}/metrics"),
    ):
        [target] = prom.targets_up(job)
        assert target["scrapeUrl"] == url
    assert worker.poll() is None and gw.proc.poll() is None

    # a gateway series and a worker series are queryable
    def grouped() -> bool:
        return any(len(ev.incident.alert_ids) == 2 for ev in incidents.poll().events())

    hop("gateway -> worker -> incidents", grouped, 60, {"gateway": gw.proc, "worker": worker})

    def sample(expr: str) -> float:
        return float(prom.wait_for(lambda: prom.value(expr), f"Prometheus series {expr}", 30))

    g, w = 'job="stormwatch-gateway"', 'job="stormwatch-worker"'
    assert sample(f'stormwatch_gateway_requests_total{{{g}, endpoint="{AM_PATH}"}} == 2') == 2
    assert sample(f'stormwatch_gateway_alerts_total{{{g}, format="alertmanager"}} == 2') == 2
    assert sample(f'stormwatch_alerts_total{{{w}, source="alertmanager"}} == 2') == 2
    assert sample(f'stormwatch_incident_events_total{{{w}, type="opened"}} >= 1') >= 1
    assert sample('sum(up{job=~"stormwatch-(worker|gateway)"}) == 2') == 2

    # the project's rules are loaded and evaluate without error against both jobs
    groups = prom.rules_evaluated()
    rules = {r["name"]: r for grp in groups for r in grp["rules"]}
    assert {"StormwatchTargetDown", "StormwatchGatewayErrors"} <= set(rules)
    assert {name: r["lastError"] for name, r in rules.items() if r["health"] != "ok"} == {}
    firing = {a["labels"]["alertname"] for a in prom.api("alerts")["alerts"]}
    assert not {"StormwatchTargetDown", "StormwatchGatewayErrors"} & firing, firing


def test_kcat_produces_raw_alerts_and_consumes_incidents_and_dead_letters(
    stack: Stack,
) -> None:
    worker = stack.start_worker()
    procs = {"worker": worker}
    print(f"\n{kcat_version()}")  # installed (when missing) before the clock starts
    alert_id = f"kcat-{uuid.uuid4().hex[:8]}"
    alert = {
        "id": alert_id,
        "source": "kcat",
        "service": "cartservice",
        "name": "HighErrorRate",
        "severity": "critical",
        "status": "firing",
        "timestamp": datetime.now(tz=UTC).isoformat(),
        "labels": {"namespace": "shop"},
        "annotations": {"summary": "5xx ratio 12% over 5m"},
    }
    malformed = '{"id": "kcat-bad", "service": "cartservice", "name": '
    raw = stack.topic("alerts.raw")
    # one message a line, keyed by service as an emitter keeps a series in order
    lines = f"{json.dumps(alert)}\n{malformed}\n".encode()
    kcat("-b", stack.bootstrap, "-P", "-t", raw, "-k", "cartservice", stdin=lines)

    def consume(topic: str, fmt: str) -> list[str]:
        args = ["-b", stack.bootstrap, "-C", "-t", stack.topic(topic), "-o", "beginning"]
        out = kcat(*args, "-e", "-f", fmt)  # -e: exit at the end of every partition
        return [line for line in out.split("\n") if line]

    incident_lines: list[str] = []

    def incident() -> IncidentEvent | None:
        incident_lines[:] = consume("incidents", "%s\n")
        events = [decode_event(line) for line in incident_lines]
        return next((e for e in events if alert_id in e.incident.alert_ids), None)

    event = hop(
        "kcat -P alerts.raw -> worker -> kcat -C incidents",
        incident,
        60,
        procs,
        lambda: f"incidents has {incident_lines}",
    )
    assert event.incident.services == ["cartservice"]

    letters: list[str] = []

    def dead_letter() -> str | None:
        letters[:] = consume("alerts.dlq", "%h\t%s\n")
        return next((line for line in letters if line.endswith("\t" + malformed)), None)

    line = hop(
        "kcat -P alerts.raw (malformed) -> worker -> kcat -C alerts.dlq",
        dead_letter,
        60,
        procs,
        lambda: f"alerts.dlq has {letters}",
    )
    headers = line.rsplit("\t", 1)[0]
    for expected in (
        "stormwatch-stage=normalize",
        "stormwatch-error=decode",
        f"stormwatch-source-topic={raw}",
        "stormwatch-reason=",
    ):
        assert expected in headers, f"dead letter headers lack {expected}: {headers}"
    reason = headers.split("stormwatch-reason=", 1)[1]
    assert reason and not reason.startswith(","), f"empty reason: {headers}"
