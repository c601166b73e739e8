"""The alerting rules and the dashboard against a real Prometheus 2.42 (Debian ``prometheus``,
installed when missing): ``promtool`` checks and unit-tests the rules, and a Prometheus
process scrapes a real worker (on the real broker and Redis of the fixtures), evaluates the
rules and answers every query of the Grafana dashboard."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests import grafana
from tests.integration.conftest import ROOT, Stack, collect
from tests.integration.prometheus import Prometheus, PrometheusError, debian_binary
from tests.integration.prometheus import promtool_binary as promtool

DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"


def _run(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _alert_names() -> set[str]:
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"] for g in doc["groups"] for r in g["rules"]}


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    out = _run(promtool(), "check", "rules", str(RULES))
    assert f"SUCCESS: {len(_alert_names())} rules found" in out
    out = _run(promtool(), "test", "rules", str(DEPLOY / "prometheus" / "rules.test.yml"))
    assert "SUCCESS" in out
    # the compose stack's Prometheus configuration, with its rule file
    _run(promtool(), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))


def test_amtool_accepts_the_alertmanager_config() -> None:
    amtool = debian_binary("amtool", "prometheus-alertmanager")
    out = _run(amtool, "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))
    assert "SUCCESS" in out


def test_prometheus_scrapes_the_worker_evaluates_the_rules_and_answers_the_dashboard(
    stack: Stack, prometheus_server: Prometheus, fixtures: Path
) -> None:
    prom = prometheus_server
    stack.start_worker()
    prom.scrape("stormwatch-worker", [f"127.0.0.1:{stack.web_port}"])
    [target] = prom.targets_up("stormwatch-worker")
    assert target["scrapeUrl"] == f"http://127.0.0.1:{stack.web_port}/metrics"
    # scraped before the alerts come: Prometheus sees the counters increase
    incidents = stack.consumer("incidents")
    stack.produce("alerts.raw", [(fixtures / "webhook_1.json").read_bytes(), b"{not json"])
    collect(incidents, lambda seen: len(seen) >= 1, 60)

    # the project's rules loaded, every one evaluated without error
    groups = prom.rules_evaluated()
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(rules) == _alert_names()
    assert {name: r["lastError"] for name, r in rules.items() if r["health"] != "ok"} == {}

    # the worker's series arrive (the lag and readiness gauges are sampled every tick)
    def sample(expr: str) -> float | None:
        return prom.wait_for(lambda: prom.value(expr), expr, timeout=30)

    w = 'job="stormwatch-worker"'
    assert sample(f'stormwatch_alerts_total{{{w}, source="alertmanager"}}') == 1
    assert sample(f'stormwatch_dlq_total{{{w}, stage="normalize", error="decode"}}') == 1
    assert sample(f'stormwatch_incident_events_total{{{w}, type="opened"}}') == 1
    assert sample(f'stormwatch_model_score_count{{{w}, model="actionability"}}') == 1
    rc = sample(f'stormwatch_open_incidents_by_root_cause{{{w}, root_cause="checkoutservice"}}')
    assert rc == 1
    assert sample(f"stormwatch_worker_ready{{{w}}} == 1") == 1
    raw = stack.topic("alerts.raw")
    assert prom.wait_for(
        lambda: prom.query(f'stormwatch_consumer_lag_messages{{{w}, topic="{raw}"}} == 0'),
        "the lag of alerts.raw to be sampled",
    )

    # the dead letter makes the DLQ rule pending (it fires after 15 minutes of them); a
    # worker that is up and ready raises no availability alert
    def alerts() -> dict[str, dict]:
        return {a["labels"]["alertname"]: a for a in prom.api("alerts")["alerts"]}

    dlq = prom.wait_for(lambda: alerts().get("StormwatchDeadLettersGrowing"), "the DLQ rule")
    assert dlq["state"] == "pending"
    assert (dlq["labels"]["stage"], dlq["labels"]["error"]) == ("normalize", "decode")
    availability = {"StormwatchTargetDown", "StormwatchWorkersAbsent", "StormwatchWorkerNotReady"}
    # (NotReady may have gone pending before the worker's first health sample set the gauge)
    prom.wait_for(lambda: not availability & set(alerts()), "no availability alert", timeout=30)

    # every panel query of the dashboard runs; the core panels have data
    dashboard = grafana.load()
    failed, empty = {}, set()
    for title, ref, expr in grafana.queries(dashboard):
        try:
            if not prom.query(grafana.substitute(expr, dashboard)):
                empty.add(title)
        except PrometheusError as exc:
            failed[f"{title} {ref}"] = str(exc)
    assert failed == {}
    with_data = {
        "Workers up",
        "Workers ready",
        "Open incidents",
        "Consumer lag",
        "Alerts in by source",
        "Incident events out by type",
        "Alert to incident",
        "Stage time per batch (p99)",
        "Event loop lag (p99)",
        "Open incidents by root cause",
        "Consumer lag by topic",
        "Dead letters by stage and error",
        "Model scores",
    }
    assert with_data - empty == with_data, f"no data: {sorted(with_data & empty)}"
