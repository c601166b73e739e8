"""Score incidents against rca-style ground truth (see benchmarks/fixtures/rca-dev/README.md).

* **AC@k** per fault: take the incident holding most of the fault's firing alerts (ties: the
  one listed first; replay output lists incidents in opening order); a hit when
  the true service is in the top k of ``[root_cause] + root_cause_candidates`` (duplicates
  removed, order kept); a fault with no alert in any incident is a miss.
  ``AC@k*`` is the same over faults with at least one firing alert.
* **pairwise P/R/F1** over firing alerts in fault windows: a pair is positive in the truth when
  both alerts belong to the same fault, predicted positive when both are in the same incident.
* **noise**: share of background (null) alerts placed in an incident that holds fault alerts.
* **compression** = 1 - incidents / firing alerts; **placed** = share of firing alerts in some
  incident.

Usable as a library (:func:`score`) or a command:
``python -m benchmarks.rca_score TRUTH.json INCIDENTS.jsonl``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class RcaScore:
    faults: int
    faults_with_alerts: int
    ac1: float
    ac3: float
    ac5: float
    ac1_star: float
    ac3_star: float
    pair_precision: float
    pair_recall: float
    pair_f1: float
    noise: float
    compression: float
    placed: float
    incidents: int
    firing_alerts: int

    def summary(self) -> str:
        return (
            f"AC@1={self.ac1:.2f} AC@3={self.ac3:.2f} pairF1={self.pair_f1:.2f} "
            f"(AC@1*={self.ac1_star:.2f} AC@3*={self.ac3_star:.2f} "
            f"P={self.pair_precision:.2f} R={self.pair_recall:.2f} noise={self.noise:.2f} "
            f"compression={self.compression:.2f})"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ranked_services(inc: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    rc = inc.get("root_cause")
    if rc:
        out.append(rc)
    for c in inc.get("root_cause_candidates") or []:
        s = c.get("service") if isinstance(c, Mapping) else c
        if s and s not in out:
            out.append(s)
    return out


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _dedup(incidents: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The last line per id counts; an id keeps the position of its first line."""
    by_id: dict[str, Mapping[str, Any]] = {}
    anon: list[Mapping[str, Any]] = []
    for inc in incidents:
        iid = inc.get("id") or inc.get("incident_id")
        if iid is None:
            anon.append(inc)
        else:
            by_id[str(iid)] = inc
    return [*by_id.values(), *anon]


def _placement(
    truth: Mapping[str, Any], incs: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, int], dict[str, list[str]]]:
    """(firing alert id -> index of the first incident holding it, fault id -> its alerts)."""
    alert_fault: Mapping[str, str | None] = truth["alert_fault"]
    firing = set(alert_fault)
    inc_of: dict[str, int] = {}
    for i, inc in enumerate(incs):
        for aid in inc.get("alert_ids") or []:
            if aid in firing and aid not in inc_of:
                inc_of[aid] = i
    fault_alerts: dict[str, list[str]] = defaultdict(list)
    for aid, fid in alert_fault.items():
        if fid is not None:
            fault_alerts[fid].append(aid)
    return inc_of, fault_alerts


def _best_incident(alerts: Sequence[str], inc_of: Mapping[str, int]) -> int | None:
    """The incident holding most of a fault's alerts (ties: the one listed first)."""
    placed = [inc_of[a] for a in alerts if a in inc_of]
    if not placed:
        return None
    return max(Counter(placed).items(), key=lambda kv: (kv[1], -kv[0]))[0]


@dataclass
class FaultResult:
    """How one fault was ranked: ``rank`` of the true service in its incident (1-based), or
    ``None`` (not listed, or no alert placed)."""

    fault_id: str
    root_cause_service: str
    fault_type: str
    alerts: int
    incident: str | None
    rank: int | None
    ranked: list[str]


def per_fault(
    truth: Mapping[str, Any], incidents: Iterable[Mapping[str, Any]]
) -> list[FaultResult]:
    """Per fault, where its true service ranks in the incident that holds most of its alerts
    (the incident :func:`score` uses for AC@k)."""
    incs = _dedup(incidents)
    inc_of, fault_alerts = _placement(truth, incs)
    out: list[FaultResult] = []
    for f in truth["faults"]:
        fid = f["fault_id"]
        alerts = fault_alerts.get(fid, [])
        best = _best_incident(alerts, inc_of)
        ranked = _ranked_services(incs[best]) if best is not None else []
        rc = f["root_cause_service"]
        iid = None
        if best is not None:
            iid = incs[best].get("id") or incs[best].get("incident_id")
        out.append(
            FaultResult(
                fid,
                rc,
                str(f.get("fault_type", "")),
                len(alerts),
                None if iid is None else str(iid),
                ranked.index(rc) + 1 if rc in ranked else None,
                ranked,
            )
        )
    return out


def score(truth: Mapping[str, Any], incidents: Iterable[Mapping[str, Any]]) -> RcaScore:
    """Score incident dicts (``alert_ids``, ``root_cause``, ``root_cause_candidates``)."""
    incs = _dedup(incidents)
    alert_fault: Mapping[str, str | None] = truth["alert_fault"]
    faults: list[Mapping[str, Any]] = truth["faults"]
    firing = set(alert_fault)
    inc_of, fault_alerts = _placement(truth, incs)

    hits = {1: 0, 3: 0, 5: 0}
    with_alerts = 0
    for f in faults:
        fid = f["fault_id"]
        if fault_alerts.get(fid):
            with_alerts += 1
        best = _best_incident(fault_alerts.get(fid, []), inc_of)
        if best is None:
            continue
        ranked = _ranked_services(incs[best])
        for k in hits:
            if f["root_cause_service"] in ranked[:k]:
                hits[k] += 1

    # pairwise over fault-window firing alerts (an unplaced alert is its own singleton)
    fault_ids = [a for a, fid in alert_fault.items() if fid is not None]
    same_fault = sum(_pairs(len(v)) for v in fault_alerts.values())
    cluster: dict[int | str, list[str]] = defaultdict(list)
    for a in fault_ids:
        cluster[inc_of.get(a, f"single:{a}")].append(a)
    same_inc = sum(_pairs(len(v)) for v in cluster.values())
    tp = 0
    for members in cluster.values():
        c = Counter(alert_fault[a] for a in members)
        tp += sum(_pairs(n) for n in c.values())
    precision = tp / same_inc if same_inc else 1.0
    recall = tp / same_fault if same_fault else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    fault_incs = {inc_of[a] for a in fault_ids if a in inc_of}
    background = [a for a, fid in alert_fault.items() if fid is None]
    absorbed = sum(1 for a in background if inc_of.get(a) in fault_incs)
    noise = absorbed / len(background) if background else 0.0

    n_inc = sum(1 for inc in incs if inc.get("alert_ids"))
    n_firing = len(firing)
    n = len(faults)
    return RcaScore(
        faults=n,
        faults_with_alerts=with_alerts,
        ac1=hits[1] / n,
        ac3=hits[3] / n,
        ac5=hits[5] / n,
        ac1_star=hits[1] / with_alerts if with_alerts else 0.0,
        ac3_star=hits[3] / with_alerts if with_alerts else 0.0,
        pair_precision=precision,
        pair_recall=recall,
        pair_f1=f1,
        noise=noise,
        compression=1 - n_inc / n_firing if n_firing else 0.0,
        placed=len(inc_of) / n_firing if n_firing else 0.0,
        incidents=n_inc,
        firing_alerts=n_firing,
    )


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m benchmarks.rca_score TRUTH.json INCIDENTS.jsonl")
        return 2
    truth = json.loads(Path(args[0]).read_text())
    result = score(truth, load_jsonl(args[1]))
    print(result.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
