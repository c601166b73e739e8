"""What a stalled run was waiting for: each worker's gauges and the shared progress in Redis.

A run stalls when nothing is counted for ``stall_s`` while the workers live. The snapshot says
where the alerts are (held for alignment, waiting in a topic) and what the waits depend on
(the merge stage's view of each domain, the raw partitions' marks); the bench then watches a
while longer to tell a slow stretch from a deadlock.
"""

from __future__ import annotations

import time
from collections import defaultdict

import redis

from benchmarks.streaming.metrics import processed, scrape
from benchmarks.streaming.processes import Tenant

#: gauges and counters of each worker shown in a stall snapshot (name -> label to group by)
_SHOWN = {
    "stormwatch_alerts_held": None,
    "stormwatch_partitions_paced": None,
    "stormwatch_consumer_lag_messages": "topic",
    "stormwatch_stalled_partitions": "topic",
    "stormwatch_ingest_pauses_total": None,
    "stormwatch_event_loop_lag_seconds_sum": None,
    "stormwatch_alerts_released_early_total": None,
}


def snapshot(tenant: Tenant) -> list[str]:
    """Lines describing each worker's held alerts and lags, the merge stage's progress per
    by-domain partition (``mprog``) and the raw partitions' marks (``imarks``), with their
    age in wall seconds."""
    lines: list[str] = []
    for i, (_, port) in enumerate(tenant.workers):
        samples = scrape(port)
        shown: dict[str, float] = defaultdict(float)
        for name, labels, value in samples:
            if name in _SHOWN:
                by = _SHOWN[name]
                key = f"{name.removeprefix('stormwatch_')}" + (
                    f"[{labels.get(by, '')}]" if by else ""
                )
                shown[key] += value
        parts = ", ".join(f"{k}={v:,.0f}" for k, v in sorted(shown.items()))
        lines.append(f"worker {i + 1}: counted {processed(samples):,.0f}; {parts}")
    r = redis.Redis.from_url(tenant.redis_url, decode_responses=True)
    try:
        prefix = f"{tenant.ns}:"
        mprog: dict[str, str] = r.hgetall(f"{prefix}mprog")  # type: ignore[assignment]
        lines.append(
            "merge stage's view (mprog): "
            + ", ".join(f"p{k}={float(v):,.1f}" for k, v in sorted(mprog.items()))
        )
        now = time.time()
        marks = []
        imarks: dict[str, str] = r.hgetall(f"{prefix}imarks")  # type: ignore[assignment]
        for k, v in sorted(imarks.items()):
            t, behind, at = v.split()
            marks.append(
                f"p{k}={float(t):,.1f}{'*' if behind == '1' else ''} ({now - float(at):.0f} s ago)"
            )
        lines.append("raw marks (imarks, * = behind): " + ", ".join(marks))
        ctl = [
            f"{key.removeprefix(prefix)}={r.xlen(key)}"
            for key in sorted(r.scan_iter(f"{prefix}ctl:*"))
        ]
        lines.append("control streams: " + (", ".join(ctl) or "none"))
    except (redis.RedisError, ValueError) as exc:
        lines.append(f"Redis state unreadable: {exc}")
    finally:
        r.close()
    return lines
