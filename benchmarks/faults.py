"""Fault storms designed from how faults propagate, and the incomplete topologies a correlator
is given in practice: the generator of the generalization benchmark
(:mod:`benchmarks.generalization`).

Faults of the three kinds below, interleaved at random, are injected one at a time into a
service X of the *true* call graph (edges from caller to callee), as fault-injection studies
do, and each one fires the alerts monitoring
would fire, with onsets that follow the propagation (X first, its callers later, two hops
later still) and every symptom drawn at random so no two faults look alike:

* ``saturation`` (CPU or memory exhaustion on X): saturation alerts and slow responses on X;
  its callers see slower calls (client-side latency, their own latency), two hops up fewer
  do; X's dependencies may see less traffic.
* ``network-delay`` (calls into X are delayed): the call latency measured by its callers
  (``HighRequestLatency``, ``service`` = X, ``labels.metric`` = ``caller->X``, as Prometheus
  rules over client-side histograms name it), the callers' own latency and their slow outbound
  calls; X itself saturates nothing.
* ``code-defect`` (an exception or wrong return value in X): **X raises no alert at all**;
  only its callers' latency and errors move, and the load on X's dependencies drops (requests
  that fail in X never reach them).

Background noise (random alerts on random services, at any time, some during faults) is
labelled ``null``, as are alerts of no fault. :func:`incomplete` removes a share of the
topology's edges the way topologies read from traces or configs miss them: whole services
with no edges (half the budget), random calls (the other half), and some of the isolated
services missing from the file altogether. Everything is seeded and deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec
import networkx as nx

from benchmarks.synthetic import T0
from pipeline.domain.schemas import Alert, AlertStatus, Severity
from pipeline.domain.topology import Topology

FAULT_KINDS = ("saturation", "network-delay", "code-defect")  # the bench's kinds
#: kinds of PROPAGATION outside the bench's storms (scored on storms of their own)
VARIANT_KINDS = ("quiet-defect",)

# (alert name, severity) of background noise, drawn uniformly
_NOISE = (
    ("CPUSaturation", Severity.warning),
    ("MemoryPressure", Severity.info),
    ("HighLatencyP99", Severity.warning),
    ("DownstreamLatencyHigh", Severity.warning),
    ("TrafficDrop", Severity.warning),
    ("ErrorRateHigh", Severity.error),
)


@dataclass
class FaultStorm:
    """Alerts (firing and resolved, sorted by event time) and their ground truth in the
    rca-dev format (``faults``, ``alert_fault``) that :mod:`benchmarks.rca_score` scores."""

    alerts: list[Alert]
    truth: dict[str, Any]
    kinds: dict[str, str] = field(default_factory=dict)  # fault id -> fault kind


class _Emitter:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.events: list[tuple[float, int, Alert]] = []
        self.alert_fault: dict[str, str | None] = {}
        self._seq = 0

    def emit(
        self,
        service: str,
        name: str,
        severity: Severity,
        at: float,
        duration: float,
        fault: str | None,
        metric: str = "",
    ) -> None:
        labels = {"alertname": name, "service": service, "pod": f"{service}-0"}
        if metric:
            labels["metric"] = metric
        for status, t in ((AlertStatus.firing, at), (AlertStatus.resolved, at + duration)):
            self._seq += 1
            aid = f"g-{self._seq}"
            alert = Alert(
                id=aid,
                source="generalization",
                service=service,
                name=name,
                severity=severity,
                status=status,
                timestamp=datetime.fromtimestamp(round(t), UTC),
                labels=labels,
            )
            self.events.append((round(t), self._seq, alert))
            if status is AlertStatus.firing:
                self.alert_fault[aid] = fault

    def maybe(
        self,
        p: float,
        service: str,
        name: str,
        severity: Severity,
        start: float,
        delay: tuple[float, float],
        fault: str,
        metric: str = "",
    ) -> None:
        rng = self.rng
        if rng.random() < p:
            at = start + rng.uniform(*delay)
            self.emit(service, name, severity, at, rng.uniform(120.0, 300.0), fault, metric)


class Symptom(NamedTuple):
    """One alert a fault may fire: on each service ``where`` (``self``: the faulty service;
    ``caller``, ``caller2``: its callers one and two hops up; ``dep``: its direct
    dependencies), with probability ``p``, ``delay`` seconds after the injection. ``call``:
    the alert is on the faulty service and names the call from that caller (labels.metric)."""

    where: str
    p: float
    name: str
    severity: Severity | None  # None: the fault's own severity (critical or warning)
    delay: tuple[float, float]
    call: bool = False


_W = Severity.warning
#: how each fault kind shows, by where (rows of one ``where`` are drawn per service in turn)
PROPAGATION: dict[str, tuple[Symptom, ...]] = {
    "saturation": (
        Symptom("self", 0.85, "CPUSaturation", None, (0, 60)),
        Symptom("self", 0.3, "MemoryPressure", _W, (0, 90)),
        Symptom("self", 0.6, "HighLatencyP99", _W, (20, 90)),
        Symptom("caller", 0.5, "DownstreamLatencyHigh", _W, (40, 150)),
        Symptom("caller", 0.4, "HighLatencyP99", _W, (40, 150)),
        Symptom("caller2", 0.25, "HighLatencyP99", _W, (60, 210)),
        Symptom("dep", 0.2, "TrafficDrop", _W, (60, 180)),
    ),
    "network-delay": (
        Symptom("caller", 0.6, "HighRequestLatency", None, (0, 60), call=True),
        Symptom("caller", 0.6, "DownstreamLatencyHigh", _W, (20, 120)),
        Symptom("caller", 0.4, "HighLatencyP99", _W, (20, 120)),
        Symptom("caller2", 0.25, "HighLatencyP99", _W, (60, 210)),
        Symptom("dep", 0.15, "TrafficDrop", _W, (60, 180)),
    ),
    # the faulty service itself stays silent
    "code-defect": (
        Symptom("caller", 0.5, "DownstreamLatencyHigh", _W, (0, 90)),
        Symptom("caller", 0.4, "HighLatencyP99", _W, (0, 90)),
        Symptom("caller", 0.3, "ErrorRateHigh", Severity.error, (0, 90)),
        Symptom("caller2", 0.2, "HighLatencyP99", _W, (30, 180)),
        Symptom("dep", 0.5, "TrafficDrop", _W, (30, 150)),
    ),
    # a code defect as a held-out system shows it: X silent, no error alert anywhere, no
    # load change below X; its callers wait on (or retry) the failing calls, so their own
    # latency rises (some also measure the slow call client-side) and, under closed-loop
    # load, they serve fewer requests; two hops up, weaker
    "quiet-defect": (
        Symptom("caller", 0.6, "HighLatencyP99", _W, (0, 90)),
        Symptom("caller", 0.3, "DownstreamLatencyHigh", _W, (0, 90)),
        Symptom("caller", 0.4, "TrafficDrop", _W, (30, 150)),
        Symptom("caller2", 0.25, "HighLatencyP99", _W, (30, 180)),
        Symptom("caller2", 0.15, "TrafficDrop", _W, (60, 210)),
    ),
}


def _inject(em: _Emitter, g: nx.DiGraph, kind: str, x: str, start: float, fid: str) -> None:
    rows = PROPAGATION.get(kind)
    if rows is None:
        known = ", ".join((*FAULT_KINDS, *VARIANT_KINDS))
        raise ValueError(f"unknown fault kind {kind!r}: one of {known}")
    one = sorted(g.predecessors(x))
    places = {
        "self": [x],
        "caller": one,
        "caller2": sorted({c for s in one for c in g.predecessors(s)} - set(one) - {x}),
        "dep": sorted(g.successors(x)),
    }
    sev = em.rng.choice((Severity.critical, Severity.warning))
    for where in ("self", "caller", "caller2", "dep"):
        group = [r for r in rows if r.where == where]
        for svc in places[where] if group else ():
            for r in group:
                on, metric = (x, f"CallLatencyP50:{svc}->{x}") if r.call else (svc, "")
                em.maybe(r.p, on, r.name, r.severity or sev, start, r.delay, fid, metric)


def fault_storm(
    topology: Topology,
    kinds: Sequence[str] = FAULT_KINDS,
    faults: int = 45,
    seed: int = 1,
    spacing_s: tuple[float, float] = (480.0, 720.0),
    noise_per_hour: float = 8.0,
) -> FaultStorm:
    """``faults`` faults, kinds taken in turn from ``kinds`` and shuffled, one after another
    (``spacing_s`` apart) on random services of ``topology``, with background noise at
    ``noise_per_hour`` alerts. Network delays and code defects hit only services that have
    callers (elsewhere no monitor would see them), saturation any service."""
    rng = random.Random(f"{topology.name}/{'+'.join(kinds)}/{seed}")
    g = topology.graph
    nodes = sorted(g.nodes)
    called = [n for n in nodes if g.in_degree(n) > 0] or nodes
    plan = [kinds[i % len(kinds)] for i in range(faults)]
    rng.shuffle(plan)
    em = _Emitter(rng)
    truth_faults: list[dict[str, Any]] = []
    by_fault: dict[str, str] = {}
    t = T0
    for i, kind in enumerate(plan):
        t += rng.uniform(*spacing_s)
        x = rng.choice(nodes if kind == "saturation" else called)
        fid = f"f{i + 1}"
        _inject(em, g, kind, x, t, fid)
        by_fault[fid] = kind
        truth_faults.append(
            {
                "fault_id": fid,
                "inject_time": datetime.fromtimestamp(t, UTC).isoformat(),
                "root_cause_service": x,
                "fault_type": kind,
            }
        )
    end = t + spacing_s[1]
    n_noise = round((end - T0) / 3600.0 * noise_per_hour)
    for _ in range(n_noise):
        name, sev = rng.choice(_NOISE)
        em.emit(rng.choice(nodes), name, sev, rng.uniform(T0, end), rng.uniform(60, 300), None)
    em.events.sort(key=lambda e: (e[0], e[1]))
    return FaultStorm(
        alerts=[a for _, _, a in em.events],
        truth={"faults": truth_faults, "alert_fault": em.alert_fault},
        kinds=by_fault,
    )


def truth_of_kind(storm: FaultStorm, kind: str) -> dict[str, Any]:
    """The storm's ground truth restricted to faults of ``kind``: other faults and their
    alerts are left out (neither faults nor background), background alerts stay."""
    keep = {fid for fid, k in storm.kinds.items() if k == kind}
    return {
        "faults": [f for f in storm.truth["faults"] if f["fault_id"] in keep],
        "alert_fault": {
            a: fid for a, fid in storm.truth["alert_fault"].items() if fid is None or fid in keep
        },
    }


def edgeless(topology: Topology, share: float, seed: int = 1) -> Topology:
    """``topology`` with ``share`` of its services (at random) still listed but without any
    edge, as a topology read from traces lists the services that emit no spans (a held-out
    system had no edges for 18 of its 46 services). ``share`` 0 returns it unchanged."""
    if share <= 0:
        return topology
    rng = random.Random(f"{topology.name}/edgeless/{share}/{seed}")
    g = topology.graph.copy()
    nodes = sorted(g.nodes)
    for n in rng.sample(nodes, round(share * len(nodes))):
        g.remove_edges_from([*g.in_edges(n), *g.out_edges(n)])
    return Topology(name=topology.name, graph=g, teams=topology.teams)


def without_dark_calls(alerts: Sequence[Alert], given: Topology) -> list[Alert]:
    """``alerts`` with the call label (``caller->callee``) removed where an end of the call
    is listed without edges in ``given``: a service that emits no spans has no edges in a
    topology read from traces, and no call metric built from the same spans names it
    (the alert itself stays)."""
    dark = {n for n in given.graph.nodes if given.graph.degree(n) == 0}
    out: list[Alert] = []
    for a in alerts:
        metric = a.labels.get("metric", "")
        ends = metric.rsplit(":", 1)[-1].split("->") if "->" in metric else []
        if dark.intersection(ends):
            labels = {k: v for k, v in a.labels.items() if k != "metric"}
            a = msgspec.structs.replace(a, labels=labels)
        out.append(a)
    return out


def incomplete(topology: Topology, share: float, seed: int = 1) -> Topology:
    """``topology`` missing ``share`` of its edges: half of them by services left with no
    edges at all, the rest random calls; every other such service is missing from the
    graph altogether (an unknown service). ``share`` 0 returns the topology unchanged."""
    if share <= 0:
        return topology
    rng = random.Random(f"{topology.name}/{share}/{seed}")
    g = topology.graph.copy()
    budget = round(share * g.number_of_edges())
    removed = 0
    isolated: list[str] = []
    for n in rng.sample(sorted(g.nodes), g.number_of_nodes()):
        d = g.degree(n)
        if d > 0 and removed + d <= budget / 2:
            g.remove_edges_from([*g.in_edges(n), *g.out_edges(n)])
            isolated.append(n)
            removed += d
    edges: Sequence[tuple[str, str]] = sorted(g.edges)
    for e in rng.sample(list(edges), min(len(edges), max(0, budget - removed))):
        g.remove_edge(*e)
    g.remove_nodes_from(isolated[::2])
    return Topology(name=topology.name, graph=g, teams=topology.teams)
