"""Storms for the experiments, with ground truth.

``labelled_storm`` is a line-for-line copy of ``pipeline.bench.synthetic.storm`` (commit in
snap/COMMIT) that also records, for every firing alert, the fault it belongs to (background
``MemoryPressure`` noise and the ``unknown-*`` alerts -> None). It consumes the random
generator exactly like the original, so the alerts are identical (checked by ``check``).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from pipeline.bench.synthetic import T0, storm
from pipeline.domain.schemas import Alert, AlertStatus, Severity
from pipeline.domain.topology import Topology

RCA_DEV = Path("/work/shared/data/rca-dev")


def labelled_storm(
    topology: Topology,
    n_events: int,
    seed: int = 11,
    fault_every_s: float = 20.0,
    noise_share: float = 0.1,
    unknown_share: float = 0.02,
) -> tuple[list[Alert], dict[str, Any]]:
    rng = random.Random(seed)
    g = topology.graph
    nodes = sorted(g.nodes)
    out: list[tuple[float, int, Alert, str | None]] = []
    seq = 0
    t = T0
    fault = 0
    faults: list[dict[str, Any]] = []

    def emit(service, name, sev, at, dur, pod, fid):
        nonlocal seq
        labels = {"pod": pod, "alertname": name}
        seq += 1
        out.append((at, seq, Alert(id=f"s-{seq}", source="synthetic", service=service, name=name,
                                   severity=sev, status=AlertStatus.firing,
                                   timestamp=datetime.fromtimestamp(at, UTC), labels=labels), fid))
        seq += 1
        out.append((at + dur, seq, Alert(id=f"s-{seq}", source="synthetic", service=service,
                                         name=name, severity=sev, status=AlertStatus.resolved,
                                         timestamp=datetime.fromtimestamp(at + dur, UTC),
                                         labels=labels), None))

    while len(out) < n_events:
        fault += 1
        fid = f"f{fault}"
        root = rng.choice(nodes)
        faults.append({"fault_id": fid, "root_cause_service": root})
        start = t + rng.uniform(0, 5)
        pods = rng.randint(1, 3)
        for p in range(pods):
            emit(root, "CPUSaturation", Severity.critical, start, rng.uniform(120, 400), f"{p}", fid)
            emit(root, "ErrorRateHigh", Severity.error, start + 10, rng.uniform(120, 300), f"{p}", fid)
        frontier = {root}
        seen = {root}
        for hop in range(1, 4):
            nxt: set[str] = set()
            for s in frontier:
                nxt.update(c for c in g.predecessors(s) if c not in seen)
            seen |= nxt
            for c in sorted(nxt):
                if rng.random() < 0.8:
                    at = start + hop * rng.uniform(10, 40)
                    emit(c, "HighLatencyP99", Severity.warning, at, rng.uniform(120, 300), "0", fid)
            frontier = nxt
        for d in sorted(g.successors(root)):
            if rng.random() < 0.5:
                at = start + rng.uniform(30, 90)
                emit(d, "TrafficDrop", Severity.warning, at, rng.uniform(120, 240), "0", fid)
        n_noise = max(1, int(len(seen) * noise_share))
        for _ in range(n_noise):
            s = rng.choice(nodes)
            emit(s, "MemoryPressure", Severity.info, start + rng.uniform(0, 60), 120, "n", None)
        if rng.random() < unknown_share * 10:
            emit(f"unknown-{fault % 50}", "Down", Severity.critical, start + 5, 180, "u", None)
        t += fault_every_s
    out.sort(key=lambda x: (x[0], x[1]))
    out = out[:n_events]
    alerts = [a for _, _, a, _ in out]
    alert_fault = {a.id: fid for _, _, a, fid in out if a.status is AlertStatus.firing}
    used = {f for f in alert_fault.values() if f}
    truth = {"faults": [f for f in faults if f["fault_id"] in used], "alert_fault": alert_fault}
    return alerts, truth


def check(topology: Topology, n: int, **kw: Any) -> None:
    a, _ = labelled_storm(topology, n, **kw)
    b = storm(topology, n, **kw)
    enc = msgspec.json.encode
    assert [enc(x) for x in a] == [enc(x) for x in b], "labelled storm differs from the bench's"


def load_rca() -> tuple[Topology, list[Alert], dict[str, Any]]:
    topo = Topology.load(RCA_DEV / "online-boutique.topology.yaml")
    dec = msgspec.json.Decoder(Alert)
    lines = (RCA_DEV / "online-boutique.alerts.jsonl").read_bytes().splitlines()
    alerts = [dec.decode(x) for x in lines if x.strip()]
    truth = json.loads((RCA_DEV / "online-boutique.truth.json").read_text())
    return topo, alerts, truth
