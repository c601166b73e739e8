"""Prometheus metrics of the worker; the registry is injected so tests never share one."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STAGES = ("normalize", "dedup", "correlate", "publish", "persist", "feedback", "detect")
# 10 ms steps up to 100 ms, where the latency target sits, so quantiles read from the
# histogram are not smeared across a wide bucket
_TENS_OF_MS = tuple(ms / 1000 for ms in range(10, 101, 10))
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, *_TENS_OF_MS, 0.125, 0.15, 0.2, 0.25, 0.3, 0.5, 1, 2.5, 5)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages = Counter(
            "stormwatch_messages_total", "Messages consumed, by topic", ["topic"], registry=registry
        )
        self.stage_items = Counter(
            "stormwatch_stage_items_total",
            "Items leaving each stage, by outcome",
            ["stage", "outcome"],
            registry=registry,
        )
        self.stage_seconds = Histogram(
            "stormwatch_stage_seconds",
            "Time spent per batch in each stage",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.dlq = Counter(
            "stormwatch_dlq_total",
            "Messages sent to the dead-letter topic, by stage and error",
            ["stage", "error"],
            registry=registry,
        )
        self.incident_events = Counter(
            "stormwatch_incident_events_total",
            "Incident events published, by type",
            ["type"],
            registry=registry,
        )
        self.open_incidents = Gauge(
            "stormwatch_open_incidents", "Incidents currently open", registry=registry
        )
        self.alert_latency = Histogram(
            "stormwatch_alert_processing_seconds",
            "From an alert's arrival on the raw topic until the correlate step that processed it "
            "has published its incident events (rate-limited updates are sent later)",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.model_updates = Counter(
            "stormwatch_model_updates_total",
            "Online model updates from feedback",
            ["model"],
            registry=registry,
        )
        self.anomalies = Counter(
            "stormwatch_metric_anomalies_total",
            "Anomaly alerts raised from metric samples",
            registry=registry,
        )
        self.ingest_pauses = Counter(
            "stormwatch_ingest_pauses_total",
            "Times ingest paused alerts.raw for correlation in the same process to catch up",
            registry=registry,
        )
        self.store_retries = Counter(
            "stormwatch_store_retries_total",
            "Redis calls retried because Redis was unreachable (the step waited meanwhile)",
            ["during"],
            registry=registry,
        )
        self.loop_lag = Histogram(
            "stormwatch_event_loop_lag_seconds",
            "How late the event loop woke a task sleeping 50 ms (time it spent busy elsewhere: "
            "every agent, timer and page shares the one loop)",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.incident_event_bytes = Histogram(
            "stormwatch_incident_event_bytes",
            "Size of incident events as published (bounded by worker.max_event_bytes)",
            buckets=(1024, 4096, 16384, 65536, 131072, 262144, 524288, 1048576),
            registry=registry,
        )
        self.publish_rejected = Counter(
            "stormwatch_publish_rejected_total",
            "Incident events the broker refused for good, by error and what was done instead "
            "(degraded: sent in minimal form; dead_lettered; dropped: the DLQ refused too)",
            ["error", "outcome"],
            registry=registry,
        )
        self.alerts_held = Gauge(
            "stormwatch_alerts_held",
            "Alerts waiting for slower input partitions to reach their event time (event-time "
            "alignment; bounded by worker.max_held_alerts)",
            registry=registry,
        )
        self.alerts_released_early = Counter(
            "stormwatch_alerts_released_early_total",
            "Alerts correlated before every input partition reached their event time, because "
            "worker.max_held_alerts were already waiting",
            registry=registry,
        )
        self.persist_failures = Counter(
            "stormwatch_persist_failures_total",
            "Redis writes of correlate state that failed (retried at the next commit)",
            registry=registry,
        )
