"""A real Prometheus for integration tests: the Debian package ``prometheus`` (2.42, with
``promtool``), installed with apt-get when missing, started on a free port with its own
configuration and storage in the test's temporary directory.

It evaluates the project's alerting rules (``deploy/prometheus/rules.yml``) every second and
scrapes whatever the test hands it with :meth:`Prometheus.scrape` (file-based service
discovery: one target file per job), every second.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.app.localstack import free_port

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"


def debian_binary(name: str, package: str) -> str:
    """Path of the executable ``name``; when missing, ``apt-get install -y package`` (after
    ``apt-get update`` if the first attempt fails). Fails the test when that is impossible."""
    found = shutil.which(name)
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail(f"{name} is missing and apt-get needs root: apt-get install -y {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def install() -> subprocess.CompletedProcess[bytes]:
        # another apt-get (a parallel test run) may hold the lock: wait for it
        lock = ["-o", "DPkg::Lock::Timeout=600"]
        cmd = ["apt-get", "install", "-y", "--no-install-recommends", *lock, package]
        return subprocess.run(cmd, env=env, capture_output=True, check=False)

    proc = install()
    if proc.returncode != 0:  # the package lists may be stale or missing
        update = ["apt-get", "update", "-o", "DPkg::Lock::Timeout=600"]
        subprocess.run(update, env=env, capture_output=True, check=False)
        proc = install()
    found = shutil.which(name)
    if not found:
        pytest.fail(f"apt-get install {package} failed: {proc.stderr.decode()[-400:].strip()}")
    return found


def prometheus_binary() -> str:
    return debian_binary("prometheus", "prometheus")


def promtool_binary() -> str:
    return debian_binary("promtool", "prometheus")


class PrometheusError(AssertionError):
    """The Prometheus HTTP API answered with an error (the message is its own)."""


@dataclass
class Prometheus:
    """A running Prometheus: ``url`` is its HTTP address."""

    url: str
    proc: subprocess.Popen[bytes]
    targets_dir: Path
    log: Path

    def scrape(self, job: str, targets: list[str], metrics_path: str = "/metrics") -> None:
        """Scrape ``targets`` (``host:port``) every second as job ``job`` (replaces what the
        job scraped before)."""
        group = {"targets": targets, "labels": {"job": job, "__metrics_path__": metrics_path}}
        tmp = self.targets_dir / f".{job}.json.tmp"
        tmp.write_text(json.dumps([group]))
        tmp.replace(self.targets_dir / f"{job}.json")  # atomic: discovery never reads half

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>``: the answer's ``data``; :class:`PrometheusError` when the
        API reports an error (a bad query, for one)."""
        query = urllib.parse.urlencode(params)
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 400/422/503 carry the error as JSON
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (or matrix/scalar, as Prometheus returns it)."""
        data = self.api("query", query=expr)
        result = data["result"]
        return result if isinstance(result, list) else [{"value": result}]

    def value(self, expr: str) -> float | None:
        """The value of a query that returns one series (None when it returns none)."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited ({self.proc.returncode}): {self.tail()}")
            last = check()
            if last:
                return last
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last})")

    def targets_up(self, job: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until every target of ``job`` has been scraped successfully."""

        def up() -> list[dict[str, Any]]:
            active = [t for t in self.api("targets")["activeTargets"] if t["labels"]["job"] == job]
            return active if active and all(t["health"] == "up" for t in active) else []

        return list(self.wait_for(up, f"job {job} to be up", timeout))

    def rules_evaluated(self, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until every loaded rule has been evaluated at least once; its rule groups."""

        def evaluated() -> list[dict[str, Any]]:
            groups = self.api("rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            never = "0001-01-01"  # the time of a rule not evaluated yet
            done = rules and all(
                not r.get("lastEvaluation", never).startswith(never) for r in rules
            )
            return groups if done else []

        return list(self.wait_for(evaluated, "every rule to be evaluated", timeout))

    def tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_prometheus(workdir: Path, rule_files: list[Path] | None = None) -> Prometheus:
    """Start Prometheus in ``workdir``: scrape and rule evaluation every second, the
    project's rules loaded (or ``rule_files``), no targets until :meth:`Prometheus.scrape`."""
    targets_dir = workdir / "targets"
    targets_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in (rule_files if rule_files is not None else [RULES])],
        "scrape_configs": [
            {
                "job_name": "tests",
                "file_sd_configs": [
                    {"files": [str(targets_dir / "*.json")], "refresh_interval": "1s"}
                ],
            }
        ],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    prom = Prometheus(f"http://127.0.0.1:{port}", proc, targets_dir, log)

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    try:
        prom.wait_for(ready, "prometheus to be ready", timeout=30)
    except AssertionError:
        prom.stop()
        raise
    return prom


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[Prometheus]:
    """A real Prometheus with the project's alerting rules; hand it targets with
    ``prometheus_server.scrape(job, ["127.0.0.1:PORT"])``."""
    prom = start_prometheus(tmp_path / "prometheus")
    yield prom
    prom.stop()
