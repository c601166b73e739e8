"""Reading a worker's ``/metrics``: alerts processed, the processing-latency histogram and its
quantiles; percentiles of measured samples."""

from __future__ import annotations

import re
import urllib.request

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text format -> (name, labels, value) samples."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m:
            labels = dict(_LABEL.findall(m.group(2) or ""))
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def scrape(port: int) -> list[tuple[str, dict[str, str], float]]:
    """The samples of the worker listening on ``port`` (none if it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return parse_metrics(resp.read().decode())
    except OSError:
        return []


def processed(samples: list[tuple[str, dict[str, str], float]]) -> float:
    """Alerts the worker has deduplicated (its first correlate-side stage)."""
    return sum(
        v
        for name, labels, v in samples
        if name == "stormwatch_stage_items_total" and labels.get("stage") == "dedup"
    )


def latency_buckets(samples: list[tuple[str, dict[str, str], float]]) -> dict[float, float]:
    """Cumulative buckets of ``stormwatch_alert_processing_seconds``: upper bound -> count."""
    return {
        float(labels["le"]): v
        for name, labels, v in samples
        if name == "stormwatch_alert_processing_seconds_bucket"
    }


def histogram(samples: list[tuple[str, dict[str, str], float]], name: str) -> dict[str, float]:
    """Count, mean, median and 90th percentile of histogram ``name`` over ``samples`` (the
    buckets of every label set and scrape given added up); empty when it observed nothing."""
    buckets: dict[float, float] = {}
    total = count = 0.0
    for metric, labels, v in samples:
        if metric == f"{name}_bucket":
            le = float(labels["le"])
            buckets[le] = buckets.get(le, 0.0) + v
        elif metric == f"{name}_sum":
            total += v
        elif metric == f"{name}_count":
            count += v
    if count <= 0:
        return {}
    return {
        "count": count,
        "mean": total / count,
        "p50": quantile(buckets, 0.5),
        "p90": quantile(buckets, 0.9),
    }


def quantile(buckets: dict[float, float], q: float) -> float:
    """Quantile from cumulative histogram buckets, linear within a bucket (like PromQL)."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return float("nan")
    rank = q * total
    prev_b, prev_c = 0.0, 0.0
    for b in bounds:
        c = buckets[b]
        if c >= rank:
            if b == float("inf"):
                return prev_b
            return prev_b + (b - prev_b) * ((rank - prev_c) / max(c - prev_c, 1e-12))
        prev_b, prev_c = b, c
    return prev_b


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of measured samples (nearest rank; NaN when there are none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
