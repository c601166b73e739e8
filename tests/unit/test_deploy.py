"""The deployment files parse and every reference between them resolves: compose services,
mounted files, secrets, the Prometheus and Alertmanager configurations, the Grafana
provisioning and dashboard, and the Kubernetes manifests. (Docker and a Kubernetes API server
are not available to the tests; promtool, amtool and a real Prometheus check the rest in
tests/integration/test_prometheus.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import CollectorRegistry

from pipeline.app.metrics import Metrics
from pipeline.auth import parse_tokens
from pipeline.config import Settings
from tests import grafana

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "kubernetes"
RULES = DEPLOY / "prometheus" / "rules.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
#: the gateway's Alertmanager endpoint (pipeline/gateway/endpoints.py)
ALERTMANAGER_PATH = "/v1/alerts/alertmanager"
JOBS = {"stormwatch-worker", "stormwatch-gateway"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _compose() -> dict[str, Any]:
    return dict(_yaml(COMPOSE))


def _k8s() -> list[dict[str, Any]]:
    docs = []
    for name in _yaml(K8S / "kustomization.yaml")["resources"]:
        docs.extend(d for d in yaml.safe_load_all((K8S / name).read_text()) if d)
    return docs


def _kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _k8s() if d["kind"] == kind]


# ---------------------------------------------------------------------- every file parses


@pytest.mark.parametrize(
    "path",
    sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yml", ".yaml", ".json"}),
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_every_deployment_file_parses(path: Path) -> None:
    if path.suffix == ".json":
        assert json.loads(path.read_text())
    else:
        assert [d for d in yaml.safe_load_all(path.read_text()) if d]


# ---------------------------------------------------------------------- docker compose


def test_compose_references_resolve() -> None:
    compose = _compose()
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", [])
        assert set(deps) <= set(services), f"{name} depends on an unknown service"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):  # a bind mount of a repository file or directory
                assert (COMPOSE.parent / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose.get("volumes", {}), f"{name}: unknown volume {source}"
        for secret in svc.get("secrets", []):
            assert secret in compose["secrets"], f"{name}: unknown secret {secret}"
        if "build" in svc:
            assert (COMPOSE.parent / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
    for secret in compose["secrets"].values():
        assert (COMPOSE.parent / secret["file"]).is_file()


def _hosts(value: str) -> Iterator[str]:
    """Host names in ``host:port`` lists and URLs."""
    for part in re.split(r"[,\s]+", value):
        if "://" in part:
            host = urlsplit(part).hostname
            if host:
                yield host
        elif re.fullmatch(r"[a-z][\w.-]*:\d+", part):
            yield part.split(":")[0]


def test_addresses_in_compose_and_its_configs_name_compose_services() -> None:
    services = set(_compose()["services"])
    addresses: list[str] = []  # host:port lists and URLs
    names: list[str] = []  # bare DNS names
    for svc in _compose()["services"].values():
        addresses.extend(str(v) for v in svc.get("environment", {}).values())
    prom = _yaml(DEPLOY / "prometheus" / "prometheus.yml")
    for job in prom["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            names.extend(sd["names"])
        for static in job.get("static_configs", []):
            addresses.extend(static["targets"])
    for am in prom["alerting"]["alertmanagers"]:
        addresses.extend(t for s in am["static_configs"] for t in s["targets"])
    datasources = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    addresses.extend(ds["url"] for ds in _yaml(datasources)["datasources"])
    am = _yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    addresses.extend(w["url"] for r in am["receivers"] for w in r.get("webhook_configs", []))
    hosts = {h for a in addresses for h in _hosts(a)} | set(names)
    assert {"kafka", "redis", "worker", "gateway", "prometheus", "alertmanager"} <= hosts
    assert hosts - {"localhost"} <= services, hosts - services - {"localhost"}


def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in _compose()["services"][service]["environment"].items()}


def test_prometheus_scrapes_the_ports_the_services_listen_on() -> None:
    prom = _yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert set(jobs) >= JOBS
    worker = jobs["stormwatch-worker"]["dns_sd_configs"][0]
    assert worker["names"] == ["worker"]
    assert str(worker["port"]) == _env("worker")["STORMWATCH_WORKER__WEB_PORT"]
    gateway = jobs["stormwatch-gateway"]["dns_sd_configs"][0]
    assert gateway["names"] == ["gateway"]
    assert str(gateway["port"]) == _env("gateway")["STORMWATCH_GATEWAY__PORT"]
    for rule_file in prom["rule_files"]:  # relative to the config, mounted with it
        assert (DEPLOY / "prometheus" / rule_file).is_file()
    mounts = _compose()["services"]["prometheus"]["volumes"]
    assert "./prometheus:/etc/prometheus:ro" in mounts
    assert (
        "--config.file=/etc/prometheus/prometheus.yml"
        in (_compose()["services"]["prometheus"]["command"])
    )


def test_alertmanager_sends_to_the_gateway_with_the_mounted_token() -> None:
    am = _yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    receivers = {r["name"]: r for r in am["receivers"]}
    [hook] = receivers[am["route"]["receiver"]]["webhook_configs"]
    url = urlsplit(hook["url"])
    assert url.hostname == "gateway" and url.path == ALERTMANAGER_PATH
    assert str(url.port) == _env("gateway")["STORMWATCH_GATEWAY__PORT"]
    auth = hook["http_config"]["authorization"]
    assert auth["type"] == "Bearer"
    # the same secret, mounted where each of them reads it
    compose = _compose()["services"]
    [secret] = compose["alertmanager"]["secrets"]
    assert auth["credentials_file"] == f"/run/secrets/{secret}"
    assert secret in compose["gateway"]["secrets"]
    assert _env("gateway")["STORMWATCH_GATEWAY__TOKEN_FILE"] == f"/run/secrets/{secret}"
    # stormwatch's own alerts do not loop back into stormwatch
    [own] = am["route"]["routes"]
    assert own["matchers"] == ['component="stormwatch"'] and own["receiver"] != "stormwatch"
    mounts = compose["alertmanager"]["volumes"]
    assert "./alertmanager:/etc/alertmanager:ro" in mounts


def _setting_names(env: dict[str, str]) -> Iterator[str]:
    yield from (k for k in env if k.startswith("STORMWATCH_"))


def _known_setting(name: str) -> bool:
    """Does ``STORMWATCH_GROUP__FIELD`` (or ``STORMWATCH_FIELD``) name a setting? Groups this
    tree does not have yet (another branch's) are not judged."""
    parts = name.removeprefix("STORMWATCH_").lower().split("__")
    fields = Settings.model_fields
    if parts[0] not in fields:
        return parts[0] not in {"kafka", "topics", "redis", "worker", "topology", "log_level"}
    if len(parts) == 1:
        return True
    group = fields[parts[0]].annotation
    return parts[1] in getattr(group, "model_fields", {}) or parts[1] in getattr(
        group, "__dataclass_fields__", {}
    )


def test_every_setting_in_compose_and_kubernetes_exists() -> None:
    names = [
        n
        for svc in _compose()["services"].values()
        for n in _setting_names({k: str(v) for k, v in svc.get("environment", {}).items()})
    ]
    for doc in _k8s():
        if doc["kind"] == "ConfigMap":
            names.extend(_setting_names(doc["data"]))
        if doc["kind"] == "Deployment":
            for c in doc["spec"]["template"]["spec"]["containers"]:
                names.extend(e["name"] for e in c.get("env", []))
    assert names
    assert [n for n in names if not _known_setting(n)] == []


# ---------------------------------------------------------------------- Grafana


def test_grafana_provisions_the_dashboard_directory_the_compose_file_mounts() -> None:
    provider = _yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "stormwatch.yml")
    [p] = provider["providers"]
    mounts = dict(v.split(":")[:2] for v in _compose()["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == p["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    home = _compose()["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert home == f"{p['options']['path']}/{grafana.DASHBOARD.name}"


def _datasource_uid() -> str:
    [ds] = _yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    assert ds["type"] == "prometheus"
    return str(ds["uid"])


def test_dashboard_structure() -> None:
    d = grafana.load()
    assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
    assert d["uid"] and d["title"]
    uid = _datasource_uid()
    panels = list(grafana.panels(d))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: dict[tuple[int, int], str] = {}
    for p in panels:
        g = p["gridPos"]
        assert all(isinstance(g[k], int) for k in ("h", "w", "x", "y")), p["title"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells.get((x, y))}"
                cells[(x, y)] = p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": uid}, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert p["targets"] and len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t.get("expr", "").strip(), f"{p['title']} {t['refId']} has no expr"
            assert t.get("datasource", p["datasource"])["uid"] == uid
    for var in d["templating"]["list"]:
        assert var["datasource"]["uid"] == uid
    for title, _, expr in grafana.queries(d):
        assert "$" not in grafana.substitute(expr, d), title


def test_dashboard_covers_what_sres_watch() -> None:
    exprs = " ".join(e for _, _, e in grafana.queries(grafana.load()))
    for metric in (
        "stormwatch_alerts_total",  # throughput in, per source
        "stormwatch_incident_events_total",  # incidents out
        "stormwatch_alert_processing_seconds_bucket",  # alert-to-incident latency
        "stormwatch_stage_seconds_bucket",
        "stormwatch_incident_alerts_bucket",  # compression
        "stormwatch_dlq_total",
        "stormwatch_consumer_lag_messages",
        "stormwatch_open_incidents_by_root_cause",
        "stormwatch_model_score_bucket",
        "stormwatch_feedback_total",
        "stormwatch_gateway_requests_total",
    ):
        assert metric in exprs


# ---------------------------------------------------------------------- metric names


def _worker_series() -> set[str]:
    return _series(Metrics(CollectorRegistry()).registry)


def _series(registry: CollectorRegistry) -> set[str]:
    names = set()
    for family in registry.collect():
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_sum", "_count"],
        }.get(family.type, [""])
        names.update(family.name + s for s in suffixes)
    return names


def _series_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(stormwatch_\w+|up)\b", expr))


def test_rules_and_dashboard_name_only_metrics_that_exist() -> None:
    """Every series named exists in the worker's or the gateway's registry."""
    from pipeline.gateway.metrics import GatewayMetrics

    known = _worker_series() | _series(GatewayMetrics(CollectorRegistry()).registry) | {"up"}
    exprs = [e for _, _, e in grafana.queries(grafana.load())]
    exprs += [r["expr"] for g in _yaml(RULES)["groups"] for r in g["rules"]]
    used = {s for e in exprs for s in _series_in(e)}
    assert used - known == set()


# ---------------------------------------------------------------------- alerting rules


def _rules() -> list[dict[str, Any]]:
    return [r for g in _yaml(RULES)["groups"] for r in g["rules"]]


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the Markdown headings."""
    out = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_every_rule_has_a_duration_severity_and_a_runbook_section() -> None:
    anchors = _anchors(OPERATIONS.read_text())
    for rule in _rules():
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["labels"]["component"] == "stormwatch", name
        ann = rule["annotations"]
        assert ann["summary"] and ann["description"], name
        doc, _, anchor = ann["runbook"].partition("#")
        assert doc == "docs/operations.md" and anchor == name.lower(), name
        assert anchor in anchors, f"docs/operations.md has no section {name}"


def test_every_rule_fires_in_the_promtool_tests() -> None:
    tests = _yaml(DEPLOY / "prometheus" / "rules.test.yml")
    assert tests["rule_files"] == [RULES.name]
    fired = {
        case["alertname"]
        for t in tests["tests"]
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    silent = {
        case["alertname"]
        for t in tests["tests"]
        for case in t.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    names = {r["alert"] for r in _rules()}
    assert names - fired == set(), "rules never seen firing"
    # a rule aggregated over everything needs a test where it stays silent; the others show
    # their healthy series beside the crafted one
    assert {"StormwatchAlertLatencyHigh", "StormwatchGatewayErrors"} <= silent


def test_rules_name_the_scrape_jobs() -> None:
    jobs = {j for r in _rules() for j in re.findall(r'job=~?"([^"]+)"', r["expr"])}
    for job in jobs:
        assert any(re.fullmatch(job, name) for name in JOBS), job


# ---------------------------------------------------------------------- Kubernetes


def test_kubernetes_documents_have_kind_and_name() -> None:
    for doc in _k8s():
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]


def _containers(deploy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deploy["spec"]["template"]["spec"]["containers"])


def _port(container: dict[str, Any], port: str | int) -> int | None:
    for p in container.get("ports", []):
        if port in (p.get("name"), p["containerPort"]):
            return int(p["containerPort"])
    return None


def test_deployments_select_their_pods_and_probe_their_ports() -> None:
    deployments = _kind("Deployment")
    assert {d["metadata"]["name"] for d in deployments} == JOBS
    for d in deployments:
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for c in _containers(d):
            for probe in ("readinessProbe", "livenessProbe"):
                get = c[probe]["httpGet"]
                assert _port(c, get["port"]) is not None, f"{c['name']} {probe}"
            assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    worker = next(d for d in deployments if d["metadata"]["name"] == "stormwatch-worker")
    [c] = _containers(worker)
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert _port(c, "http") == int(env["STORMWATCH_WORKER__WEB_PORT"])
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    gateway = next(d for d in deployments if d["metadata"]["name"] == "stormwatch-gateway")
    [c] = _containers(gateway)
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert _port(c, "http") == int(env["STORMWATCH_GATEWAY__PORT"])
    assert c["args"] == ["stormwatch", "ingest"]


def test_services_select_deployments_and_target_named_ports() -> None:
    deployments = _kind("Deployment")
    for svc in _kind("Service"):
        selector = svc["spec"]["selector"]
        [d] = [
            d
            for d in deployments
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        for port in svc["spec"]["ports"]:
            assert any(_port(c, port["targetPort"]) for c in _containers(d)), svc["metadata"]
    assert {s["metadata"]["name"] for s in _kind("Service")} == JOBS  # the rules' job names


def test_the_service_monitor_selects_both_services_by_port_name() -> None:
    [monitor] = _kind("ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [s for s in _kind("Service") if selector.items() <= s["metadata"]["labels"].items()]
    assert {s["metadata"]["name"] for s in selected} == JOBS
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["path"] == "/metrics"
        for svc in selected:
            assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}


def test_config_maps_and_secrets_referenced_exist_with_their_keys() -> None:
    maps = {d["metadata"]["name"]: d.get("data", {}) for d in _kind("ConfigMap")}
    secrets = {d["metadata"]["name"]: d.get("stringData", {}) for d in _kind("Secret")}
    for d in _kind("Deployment"):
        spec = d["spec"]["template"]["spec"]
        for vol in spec.get("volumes", []):
            if "configMap" in vol:
                assert vol["configMap"]["name"] in maps
            if "secret" in vol:
                keys = secrets[vol["secret"]["secretName"]]
                assert all(i["key"] in keys for i in vol["secret"].get("items", []))
        for c in spec["containers"]:
            for src in c.get("envFrom", []):
                assert src["configMapRef"]["name"] in maps
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]], e["name"]
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            assert mounts <= {v["name"] for v in spec.get("volumes", [])}


def test_the_topology_config_map_is_the_sample_topology() -> None:
    [cm] = [d for d in _kind("ConfigMap") if "topology.yaml" in d.get("data", {})]
    mounted = yaml.safe_load(cm["data"]["topology.yaml"])
    assert mounted == _yaml(ROOT / "topologies" / "online-boutique.yaml")
    worker = next(d for d in _kind("Deployment") if d["metadata"]["name"] == "stormwatch-worker")
    [c] = _containers(worker)
    env = {e["name"]: e.get("value") for e in c["env"]}
    [mount] = [m for m in c["volumeMounts"] if m["name"] == "topology"]
    assert env["STORMWATCH_TOPOLOGY"] == f"{mount['mountPath']}/topology.yaml"


@pytest.mark.parametrize(
    ("deployment", "variable", "service"),
    [
        ("stormwatch-gateway", "STORMWATCH_GATEWAY__TOKEN_FILE", "gateway"),
        ("stormwatch-worker", "STORMWATCH_WORKER__WEB_TOKEN_FILE", "worker"),
    ],
)
def test_tokens_are_read_from_the_mounted_secrets(
    deployment: str, variable: str, service: str
) -> None:
    """Kubernetes and compose mount a token secret where the process reads it, and the
    placeholder tokens are ones the process accepts (so the stack starts as shipped)."""
    d = next(d for d in _kind("Deployment") if d["metadata"]["name"] == deployment)
    [c] = _containers(d)
    env = {e["name"]: e.get("value") for e in c["env"]}
    [mount] = [m for m in c["volumeMounts"] if m["name"] == "tokens"]
    [vol] = [v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "tokens"]
    [item] = vol["secret"]["items"]
    assert env[variable] == f"{mount['mountPath']}/{item['path']}"
    [secret] = [s for s in _kind("Secret") if s["metadata"]["name"] == vol["secret"]["secretName"]]
    assert parse_tokens(secret["stringData"][item["key"]], item["key"])
    [name] = _compose()["services"][service]["secrets"]
    assert _env(service)[variable] == f"/run/secrets/{name}"
    file = COMPOSE.parent / _compose()["secrets"][name]["file"]
    assert parse_tokens(file.read_text(), str(file))


def test_the_prometheus_rule_holds_the_same_rules() -> None:
    [rule] = _kind("PrometheusRule")
    assert rule["spec"]["groups"] == _yaml(RULES)["groups"]
