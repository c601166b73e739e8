"""A real Prometheus Alertmanager for integration tests: the Debian package
``prometheus-alertmanager`` (0.25 on bookworm), installed with apt-get when missing, started
on a free port with the configuration the test gives, its storage and log in the test's
temporary directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from pipeline.app.localstack import free_port
from tests.integration.prometheus import debian_binary


def alertmanager_binary() -> str:
    return debian_binary("prometheus-alertmanager", "prometheus-alertmanager")


@dataclass
class Alertmanager:
    """A running Alertmanager: ``url`` is its HTTP address."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """``POST /api/v2/alerts`` (postable alerts: labels, annotations, startsAt, endsAt)."""
        req = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            json.dumps(alerts).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200, f"Alertmanager refused the alerts: HTTP {resp.status}"

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: the alerts it holds."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=10) as resp:
            return list(json.loads(resp.read()))

    def counter(self, name: str, **labels: str) -> float:
        """Sum of the samples of counter ``name`` (without ``_total``) whose labels include
        ``labels``, read from Alertmanager's own ``/metrics``."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            if family.name == name
            for s in family.samples
            if s.name == f"{name}_total" and labels.items() <= s.labels.items()
        )

    def tail(self, lines: int = 4) -> str:
        """The last ``lines`` lines of its log."""
        text = self.log.read_text() if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def start_alertmanager(workdir: Path, config: dict[str, Any]) -> Alertmanager:
    """Start Alertmanager in ``workdir`` with ``config`` (its YAML as a dict), no clustering;
    returns once ``/-/ready`` answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = workdir / "alertmanager.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                alertmanager_binary(),
                f"--config.file={config_file}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=info",
            ],
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    am = Alertmanager(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + 30
    while not _ready(am.url):
        if proc.poll() is not None or time.monotonic() > deadline:
            am.stop()
            raise AssertionError(
                f"Alertmanager did not become ready (exit code {proc.returncode}): {am.tail()}"
            )
        time.sleep(0.2)
    return am
