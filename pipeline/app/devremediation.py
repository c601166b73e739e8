"""``stormwatch dev``'s remediation demo: a supervised process that dies once, its
``ProcessDown`` alert, the incident with the ``restart-crashed-process`` runbook attached,
the automatic restart by the remediation process, and the verification once the alert
resolves; every audit record is shown as it arrives on ``remediations``.

The demo service (``demo-worker``) is not in the topology, so it forms an incident of its
own, apart from the replayed storm. It runs when supervisord and the runbooks are there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import yaml
from confluent_kafka import Producer
from rich.markup import escape

from pipeline.app.supervised import SLEEPER, Supervisord, SupervisordError, start_supervisord

SERVICE = "demo-worker"


class RestartDemo:
    def __init__(
        self, sup: Supervisord, proc: subprocess.Popen[bytes], alerts_topic: str, after_s: float
    ) -> None:
        self.sup = sup
        self.proc = proc
        self.alerts_topic = alerts_topic
        self.after_s = after_s
        self.started = time.monotonic()
        self.killed_at: float | None = None
        self.resolved = False
        #: the demo's incidents (records of the storm's incidents are not shown)
        self.incidents: set[str] = set()

    def due(self, storm_sent: bool) -> bool:
        waited = time.monotonic() - self.started
        return self.killed_at is None and (storm_sent or waited >= self.after_s)

    def crash(self, producer: Producer) -> str:
        """Kill the demo process and send its alert; returns what to show."""
        self.sup.kill(SERVICE)
        self.killed_at = time.time()
        producer.produce(self.alerts_topic, self._alert("firing"), key=SERVICE.encode())
        producer.flush(10)
        state = self.sup.info(SERVICE)["statename"]
        return f"[bold]demo[/]    killed {SERVICE} (supervisord: {state}); ProcessDown alert sent"

    def on_record(self, rec: dict[str, Any], producer: Producer) -> str | None:
        """An audit record from ``remediations`` to show (None: not the demo's); resolves
        the alert once the restart ran."""
        if rec.get("service") == SERVICE:
            self.incidents.add(rec.get("incident_id", ""))
        if rec.get("incident_id") not in self.incidents:
            return None
        kind = rec.get("kind", "?")
        parts = [f"[bold]remediation[/] {kind}", rec.get("runbook_id", "")]
        if rec.get("action"):
            parts.append(f"{rec['action']} {','.join(rec.get('instances', []))}")
        if rec.get("guard"):
            parts.append(f"guard {rec['guard']}")
        if rec.get("detail"):
            parts.append(escape(str(rec["detail"])[:120]))
        if kind == "executed" and rec.get("service") == SERVICE and not self.resolved:
            self.resolved = True
            producer.produce(self.alerts_topic, self._alert("resolved"), key=SERVICE.encode())
            producer.flush(10)
            state = self.sup.info(SERVICE)["statename"]
            parts.append(f"-> {SERVICE} {state}; alert resolved")
        return " · ".join(p for p in parts if p)

    def _alert(self, status: str) -> bytes:
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return msgspec.json.encode(
            {
                "id": f"{SERVICE}-{status}-{int(time.time())}",
                "source": "stormwatch-dev",
                "service": SERVICE,
                "name": "ProcessDown",
                "severity": "critical",
                "status": status,
                "timestamp": at,
                "labels": {"process": SERVICE},
                "annotations": {"summary": f"{SERVICE} exited"},
            }
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.sup.stop()


@contextmanager
def remediation_demo(
    env: dict[str, str], workdir: Path, runbooks: Path, alerts_topic: str, after_s: float = 20.0
) -> Iterator[RestartDemo | None]:
    """supervisord with the demo process and ``stormwatch remediation run``, or None (with
    the reason in ``demo.skipped``) when supervisord or the runbooks are missing."""
    if not runbooks.is_dir():
        yield None
        return
    try:
        sup = start_supervisord(workdir, {SERVICE: SLEEPER})
    except SupervisordError:
        yield None
        return
    inventory = workdir / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {"services": {SERVICE: {"supervisor": {"url": sup.url, "programs": [SERVICE]}}}}
        )
    )
    log = (workdir / "remediation.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "remediation", "run"],
        env={
            **env,
            "STORMWATCH_REMEDIATION__RUNBOOKS": str(runbooks),
            "STORMWATCH_REMEDIATION__INVENTORY": str(inventory),
            "STORMWATCH_REMEDIATION__TICK_INTERVAL_S": "0.5",
            "STORMWATCH_REMEDIATION__METRICS_PORT": "0",
            "STORMWATCH_LOG_LEVEL": "info",
        },
        start_new_session=True,
        stdout=log,
        stderr=log,
    )
    demo = RestartDemo(sup, proc, alerts_topic, after_s)
    try:
        yield demo
    finally:
        demo.stop()
        log.close()
