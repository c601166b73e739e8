"""The peer (phase 4 of ``make bench``): Prometheus Alertmanager 0.25 ingesting the same alerts
through ``POST /api/v2/alerts``, installed with apt-get when missing and running as root."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from benchmarks.streaming.processes import kill
from pipeline.app.localstack import free_port

AM_CONFIG = """\
route:
  receiver: blackhole
  group_by: ['service']
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: blackhole
"""


def alertmanager_binary(console_note: Callable[[str], None]) -> str | None:
    """Path of ``prometheus-alertmanager``, installed with apt-get if missing (as root)."""
    found = shutil.which("prometheus-alertmanager")
    if found:
        return found
    if os.geteuid() != 0:
        console_note("Alertmanager skipped: not installed and not root (apt-get needs root)")
        return None
    console_note("installing prometheus-alertmanager with apt-get")
    proc = subprocess.run(
        ["apt-get", "install", "-y", "prometheus-alertmanager"],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        check=False,
    )
    found = shutil.which("prometheus-alertmanager")
    if not found:
        tail = proc.stderr.decode()[-300:]
        console_note(f"Alertmanager skipped: apt-get install failed ({tail.strip()})")
    return found


def to_alertmanager(values: Sequence[bytes], now: float) -> list[dict[str, Any]]:
    """Canonical alerts -> Alertmanager v2 postable alerts, event times shifted to now."""
    decoded = [json.loads(v) for v in values]
    if not decoded:
        return []
    last = datetime.fromisoformat(decoded[-1]["timestamp"].replace("Z", "+00:00")).timestamp()
    out = []
    for a in decoded:
        at = datetime.fromisoformat(a["timestamp"].replace("Z", "+00:00")).timestamp()
        ts = datetime.fromtimestamp(now - (last - at), UTC).isoformat()
        item: dict[str, Any] = {
            "labels": {
                **a.get("labels", {}),
                "alertname": a["name"],
                "service": a["service"],
                "severity": a["severity"],
            },
            "annotations": a.get("annotations", {}),
            "startsAt": ts,
        }
        if a["status"] == "resolved":
            item["endsAt"] = ts
        out.append(item)
    return out


def alertmanager_rate(
    values: Sequence[bytes], batch: int, clients: int, note: Callable[[str], None]
) -> dict[str, Any] | None:
    """Alertmanager's ingest rate for ``values`` posted in batches of ``batch`` by ``clients``
    threads, and its RSS; None when it is not available."""
    binary = alertmanager_binary(note)
    if binary is None:
        return None
    workdir = Path(tempfile.mkdtemp(prefix="sw-am-"))
    (workdir / "am.yml").write_text(AM_CONFIG)
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'am.yml'}",
            f"--storage.path={workdir}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    note("Alertmanager skipped: it did not become ready")
                    return None
                time.sleep(0.2)
        bodies = [
            json.dumps(to_alertmanager(values[i : i + batch], time.time())).encode()
            for i in range(0, len(values), batch)
        ]
        errors: list[str] = []

        def post(mine: list[bytes]) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for body in mine:
                conn.request("POST", "/api/v2/alerts", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors.append(f"HTTP {resp.status}")
            conn.close()

        threads = [
            threading.Thread(target=post, args=(bodies[k::clients],)) for k in range(clients)
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        rss = psutil.Process(proc.pid).memory_info().rss
        if errors:
            note(f"Alertmanager answered {len(errors)} batches with errors, e.g. {errors[0]}")
        return {"rate": len(values) / seconds, "alerts": len(values), "rss": rss}
    finally:
        kill(proc)
