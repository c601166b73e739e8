"""Trivial reference methods the correlation benchmark scores side by side with stormwatch.

* ``time_windows``: session windows: a firing alert more than ``window_s`` seconds after the
  previous firing alert opens a new window (this reproduces the figures the rca-dev README
  quotes for "5-min time windows"); the root cause is the earliest alert's service
  (``rank="earliest"``) or the most downstream alerting service (``rank="downstream"``: fewest
  alerting dependencies below it, ties by time); candidates follow in that order.
* ``alertmanager_group_by_service``: Alertmanager with ``group_by: [service]``: one aggregation
  group per service, alive while any of its alerts fires (plus ``group_interval_s`` after the
  last resolution, the time the group keeps notifying); the root cause is the group's service.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.domain.fingerprint import fingerprint
from pipeline.domain.schemas import Alert, AlertStatus
from pipeline.domain.topology import Topology


def _incident(iid: str, alerts: list[Alert], ranked: list[str]) -> dict[str, Any]:
    return {
        "id": iid,
        "alert_ids": [a.id for a in alerts],
        "root_cause": ranked[0] if ranked else None,
        "root_cause_candidates": [
            {"service": s, "score": round(1.0 / (i + 1), 4)} for i, s in enumerate(ranked)
        ],
        "services": sorted({a.service for a in alerts}),
    }


def time_windows(
    alerts: Iterable[Alert],
    topology: Topology,
    window_s: float = 300.0,
    rank: str = "earliest",
) -> list[dict[str, Any]]:
    groups: list[list[Alert]] = []
    last = float("-inf")
    for a in alerts:
        if a.status is not AlertStatus.firing:
            continue
        t = a.epoch
        if t > last + window_s:
            groups.append([])
        groups[-1].append(a)
        last = t
    out = []
    for i, g in enumerate(groups):
        first: dict[str, float] = {}
        for a in g:
            first.setdefault(a.service, a.epoch)
        order = sorted(first, key=lambda s: (first[s], s))
        if rank == "downstream":
            alerting = set(first)
            desc = {
                s: (
                    len(alerting & set(_descendants(topology, s))) if s in topology else 0,
                    first[s],
                    s,
                )
                for s in alerting
            }
            order = sorted(alerting, key=lambda s: desc[s])
        out.append(_incident(f"win-{i}", g, order))
    return out


def _descendants(topology: Topology, service: str) -> set[str]:
    import networkx as nx

    return set(nx.descendants(topology.graph, service))


def alertmanager_group_by_service(
    alerts: Iterable[Alert], group_interval_s: float = 300.0
) -> list[dict[str, Any]]:
    open_groups: dict[str, dict[str, Any]] = {}  # service -> group
    done: list[dict[str, Any]] = []
    n = 0
    for a in alerts:
        t = a.epoch
        svc = a.service
        g = open_groups.get(svc)
        if g is not None and not g["firing"] and t > g["quiet_since"] + group_interval_s:
            done.append(g)
            del open_groups[svc]
            g = None
        if a.status is AlertStatus.resolved:
            if g is not None:
                g["firing"].discard(fingerprint(a))
                if not g["firing"]:
                    g["quiet_since"] = t
            continue
        if g is None:
            n += 1
            g = open_groups[svc] = {
                "id": f"am-{n}",
                "service": svc,
                "alerts": [],
                "firing": set(),
                "quiet_since": t,
            }
        g["alerts"].append(a)
        g["firing"].add(fingerprint(a))
    done.extend(open_groups.values())
    done.sort(key=lambda g: (g["alerts"][0].epoch, g["id"]))  # output in opening order
    return [_incident(g["id"], g["alerts"], [g["service"]]) for g in done]
