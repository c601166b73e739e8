"""Prometheus metrics of the worker; the registry is injected so tests never share one.

Every label has a bounded set of values: stages, topics, event types and error names are
the code's own; alert sources are capped by :class:`BoundedLabel`, root causes by
:func:`top_counts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pipeline.domain.detectors import ANOMALY_SOURCE
from pipeline.domain.schemas import EventType, Feedback, FeedbackAction, Verdict
from pipeline.domain.scoring import AlertScore

STAGES = ("normalize", "dedup", "correlate", "publish", "persist", "feedback", "detect")
# 10 ms steps up to 100 ms, where the latency target sits, so quantiles read from the
# histogram are not smeared across a wide bucket
_TENS_OF_MS = tuple(ms / 1000 for ms in range(10, 101, 10))
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, *_TENS_OF_MS, 0.125, 0.15, 0.2, 0.25, 0.3, 0.5, 1, 2.5, 5)
#: member alerts of an incident: a storm of one fault is hundreds to thousands
_SIZE_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
#: model scores live in [0, 1]; 0.05 steps show where thresholds (0.5, 0.7, 0.8) cut
_SCORE_BUCKETS = tuple(round(i * 0.05, 2) for i in range(1, 21))

#: sources the adapters set, and ours: always their own label value
KNOWN_SOURCES = (
    "alertmanager",
    "prometheus",
    "grafana",
    "pagerduty",
    "cloudevents",
    "generic",
    "unknown",  # canonical alerts without a source
    ANOMALY_SOURCE,
)
#: the dead letters the worker's stages send, ``(stage, error)``: their series exist from the
#: start, so the first one shows in ``rate()`` (publish errors are the broker's, added as met)
DLQ_KINDS = (
    ("normalize", "decode"),
    ("normalize", "invalid"),
    ("feedback", "invalid"),
    ("feedback", "unknown-incident"),
    ("detect", "invalid"),
    ("merge", "invalid"),
)
#: distinct other source names given a label of their own (first come); the rest are "other"
MAX_OTHER_SOURCES = 20
#: root causes with the most open incidents given a label of their own; the rest are "other"
TOP_ROOT_CAUSES = 10
OTHER = "other"
#: the label value of open incidents without a root cause
NO_ROOT_CAUSE = "none"


class BoundedLabel:
    """Maps free-form values (alert sources) onto a bounded label set: the ``known`` values,
    plus the first ``limit`` other distinct values seen; everything else is ``other``. Values
    are cut to 64 characters."""

    def __init__(self, known: Iterable[str], limit: int) -> None:
        self.known = frozenset(known)
        self.limit = limit
        self.admitted: set[str] = set()

    def __call__(self, value: str) -> str:
        value = value[:64] or OTHER
        if value in self.known or value in self.admitted:
            return value
        if len(self.admitted) < self.limit:
            self.admitted.add(value)
            return value
        return OTHER


def top_counts(counts: Mapping[str, int], k: int) -> dict[str, int]:
    """The ``k`` largest counts (ties: by name), the rest summed under ``other``."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    out = dict(ranked[:k])
    rest = sum(n for _, n in ranked[k:])
    if rest:
        out[OTHER] = out.get(OTHER, 0) + rest
    return out


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
        self.web_refused = Counter(
            "stormwatch_web_refused_total",
            "Requests the worker's web server refused, by status (401: no or a wrong bearer "
            "token; 403: writes off, no token configured) and kind (read or write)",
            ["status", "kind"],
            registry=registry,
        )
        for status in ("401", "403"):
            self.web_refused.labels(status, "write")
        self.incident_events = Counter(
            "stormwatch_incident_events_total",
            "Incident events published, by type",
            ["type"],
            registry=registry,
        )
        self.open_incidents = Gauge(
            "stormwatch_open_incidents", "Incidents currently open", registry=registry
        )
        self.escalation_pages = Counter(
            "stormwatch_escalations_total",
            "Escalation steps paged (escalated events with an escalation), by step: 1-9, 10+",
            ["step"],
            registry=registry,
        )
        self.escalation_changes = Counter(
            "stormwatch_escalation_changes_total",
            "Escalations started, acknowledged, re-triggered, resolved, exhausted, or not "
            "started for want of an owning team's policy (no_policy)",
            ["change"],
            registry=registry,
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
        self.partitions_paced = Gauge(
            "stormwatch_partitions_paced",
            "By-domain partitions whose oldest held alert waits only for the other correlation "
            "domains (split topology: worker.max_domain_skew_s ahead of the slowest)",
            registry=registry,
        )
        self.correlation_domains = Gauge(
            "stormwatch_correlation_domains",
            "Correlation domains the topology's largest connected part is split into "
            "(worker.domains; 1: not split, no merge stage)",
            registry=registry,
        )
        self.correlation_domains.set(1)
        self.merge_stage_owned = Gauge(
            "stormwatch_merge_stage_owned",
            "1 while this process runs the cross-domain merge stage (split topology: the merge "
            "topic's one partition is assigned here), else 0",
            registry=registry,
        )
        self.mark_delay = Histogram(
            "stormwatch_merge_mark_delay_seconds",
            "Wall time from a by-domain partition's progress mark to the merge stage recording "
            "it in Redis (split topology): how late the other domains learn how far it got",
            buckets=_LATENCY_BUCKETS,
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
        self.alerts = Counter(
            "stormwatch_alerts_total",
            "Alerts taken in: normalized from alerts.raw, or raised by the metric detectors; "
            f"by source (the adapters' names, and the first {MAX_OTHER_SOURCES} other names "
            "seen; the rest are 'other')",
            ["source"],
            registry=registry,
        )
        self.incident_alerts = Histogram(
            "stormwatch_incident_alerts",
            "Member alerts of an incident when it resolves (compression: alerts per incident)",
            buckets=_SIZE_BUCKETS,
            registry=registry,
        )
        self.open_by_root_cause = Gauge(
            "stormwatch_open_incidents_by_root_cause",
            f"Open incidents by root-cause service: the {TOP_ROOT_CAUSES} with the most, the "
            f"rest as '{OTHER}', those without one as '{NO_ROOT_CAUSE}'",
            ["root_cause"],
            registry=registry,
        )
        self.model_score = Histogram(
            "stormwatch_model_score",
            "Scores of the online models, in [0, 1]: novelty and actionability of each alert "
            "correlated, anomaly score of each metric sample",
            ["model"],
            buckets=_SCORE_BUCKETS,
            registry=registry,
        )
        self.feedback = Counter(
            "stormwatch_feedback_total",
            "Valid feedback messages received, by action and verdict ('none' without one)",
            ["action", "verdict"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "stormwatch_consumer_lag_messages",
            "Messages on this worker's assigned partitions past the last one processed (for a "
            "partition nothing was processed from since its assignment: past the consumer's "
            "position), by topic; sampled every worker.tick_interval_s",
            ["topic"],
            registry=registry,
        )
        self.stalled_partitions = Gauge(
            "stormwatch_stalled_partitions",
            "Assigned partitions with messages waiting that have not moved for "
            "worker.stall_after_s",
            registry=registry,
        )
        self.ready = Gauge(
            "stormwatch_worker_ready",
            "1 while /healthz would answer 200 (Redis reachable, no partition stalled), else 0",
            registry=registry,
        )
        self._sources = BoundedLabel(KNOWN_SOURCES, MAX_OTHER_SOURCES)
        self._initialize()
        self._lag_topics: set[str] = set()
        self._root_causes: set[str] = set()
        self._novelty = self.model_score.labels("novelty")
        self._actionability = self.model_score.labels("actionability")
        self.anomaly_score = self.model_score.labels("anomaly")

    def _initialize(self) -> None:
        """Create the series of the label values known in advance at 0: Prometheus's
        ``rate()`` only sees an increase between two scrapes of a series that exists."""
        for stage, error in DLQ_KINDS:
            self.dlq.labels(stage, error)
        for event_type in EventType:
            self.incident_events.labels(event_type.value)
        for source in KNOWN_SOURCES:
            self.alerts.labels(source)
        for action in FeedbackAction:
            verdicts = [v.value for v in Verdict] if action is FeedbackAction.verdict else ["none"]
            for verdict in verdicts:
                self.feedback.labels(action.value, verdict)

    def alerts_in(self, by_source: Mapping[str, int]) -> None:
        """Count alerts taken in, ``source -> alerts``."""
        for source, n in by_source.items():
            self.alerts.labels(self._sources(source)).inc(n)

    def scores(self, scores: Iterable[AlertScore]) -> None:
        for sc in scores:
            self._novelty.observe(sc.novelty)
            self._actionability.observe(sc.actionability)

    def escalation_paged(self, step: int) -> None:
        self.escalation_pages.labels(str(step) if step < 10 else "10+").inc()

    def feedback_received(self, fb: Feedback) -> None:
        verdict = fb.verdict.value if fb.verdict is not None else "none"
        self.feedback.labels(fb.action.value, verdict).inc()

    def lag(self, by_topic: Mapping[str, int]) -> None:
        """Set the lag of every topic sampled; topics no longer assigned read 0."""
        for topic in self._lag_topics - set(by_topic):
            self.consumer_lag.labels(topic).set(0)
        for topic, n in by_topic.items():
            self.consumer_lag.labels(topic).set(n)
        self._lag_topics.update(by_topic)

    def open_root_causes(self, counts: Mapping[str | None, int]) -> None:
        """Set the open incidents per root cause (``None``: none named), bounded by
        :func:`top_counts`; root causes that dropped out of the top are removed."""
        named = {rc or NO_ROOT_CAUSE: 0 for rc in counts}
        for rc, n in counts.items():
            named[rc or NO_ROOT_CAUSE] += n
        shown = top_counts(named, TOP_ROOT_CAUSES)
        for rc in self._root_causes - set(shown):
            self.open_by_root_cause.remove(rc)
        for rc, n in shown.items():
            self.open_by_root_cause.labels(rc).set(n)
        self._root_causes = set(shown)
