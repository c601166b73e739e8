"""The worker's live insights: maintained from the ``incidents`` and ``feedback`` topics
(:mod:`pipeline.app.insights_feed`, state checkpointed to Redis); Prometheus metrics (top-k
only) and the ``/insights`` page are served from the last report the feed built.

``stormwatch report --since`` still builds a report from the incident records in Redis
(:func:`pipeline.reports.live.store_report`), for any window and without a worker.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from pipeline.adapters.lease import RedisLease
from pipeline.adapters.redis_store import RedisStore
from pipeline.app import learned_edges
from pipeline.app.insights_feed import InsightsFeed
from pipeline.config import Settings
from pipeline.domain.insights import InsightsReport
from pipeline.domain.topology import Topology
from pipeline.reports import render

log = structlog.get_logger("stormwatch.insights")

#: series per metric family at most (the report's top entries)
TOP_RULES = 20
TOP_KEYS = 10
TOP_RECURRING = 10
#: Redis calls of the feed give up after this long (then retried at the next write)
STORE_TIMEOUT_S = 10.0
#: the insights lease (after the key prefix): held by the one process that feeds them
LEASE_KEY = "lease:insights"


class InsightsMetrics:
    """``stormwatch_insights_*``: every family holds at most its top-k label sets; a refresh
    clears the old ones first, so series that leave the top-k disappear."""

    def __init__(self, registry: CollectorRegistry) -> None:
        g = "stormwatch_insights_"
        self.incidents = Gauge(f"{g}incidents", "closed incidents in the window", registry=registry)
        self.noisy_rules = Gauge(f"{g}noisy_rules", "alert rules called noisy", registry=registry)
        self.rule_noise = Gauge(
            f"{g}rule_noise_share",
            f"noise share of the {TOP_RULES} highest-ranked alert rules",
            ["service", "alertname"],
            registry=registry,
        )
        self.rule_pages = Gauge(
            f"{g}rule_pages",
            f"incidents that paged, of the {TOP_RULES} highest-ranked alert rules",
            ["service", "alertname"],
            registry=registry,
        )
        self.mttr = Gauge(
            f"{g}mttr_seconds",
            f"mean time to resolve, the {TOP_KEYS} keys with most incidents per dimension",
            ["dimension", "key"],
            registry=registry,
        )
        self.mtta = Gauge(
            f"{g}mtta_seconds",
            f"mean time to acknowledge, the {TOP_KEYS} keys with most incidents per dimension",
            ["dimension", "key"],
            registry=registry,
        )
        self.recurring = Gauge(
            f"{g}recurring_incidents",
            f"occurrences of the {TOP_RECURRING} most frequent recurring incidents",
            ["root_cause", "alertnames"],
            registry=registry,
        )
        self.suggested = Gauge(
            f"{g}suggested_edge_confidence",
            "suggested missing topology edges (at most insights max_suggestions)",
            ["caller", "callee"],
            registry=registry,
        )
        self.stale = Gauge(f"{g}stale_edges", "likely stale topology edges", registry=registry)
        self.refreshed = Gauge(
            f"{g}last_refresh_timestamp_seconds", "when the report was rebuilt", registry=registry
        )
        self.failures = Counter(
            f"{g}refresh_failures",
            "writes of the insights state to Redis that failed (retried)",
            registry=registry,
        )
        self.skipped = Counter(
            f"{g}skipped",
            "messages on incidents or feedback the insights could not read (skipped)",
            ["topic"],
            registry=registry,
        )
        self.leader = Gauge(
            f"{g}leader",
            "1 while this process holds the insights lease and feeds the insights, else 0",
            registry=registry,
        )

    def _families(self) -> tuple[Gauge, ...]:
        return (
            self.rule_noise,
            self.rule_pages,
            self.mttr,
            self.mtta,
            self.recurring,
            self.suggested,
        )

    def clear(self) -> None:
        """No report here (a stand-by): every insights series empty or zero."""
        for family in self._families():
            family.clear()
        for gauge in (self.incidents, self.noisy_rules, self.stale, self.refreshed):
            gauge.set(0)

    def update(self, rep: InsightsReport, now: float) -> None:
        self.incidents.set(rep.incidents)
        self.noisy_rules.set(sum(q.noisy for q in rep.rules))
        for family in self._families():
            family.clear()
        for q in rep.rules[:TOP_RULES]:
            self.rule_noise.labels(q.service, q.name).set(q.noise_share)
            self.rule_pages.labels(q.service, q.name).set(q.pages)
        per_dim: dict[str, int] = {}
        for t in rep.timings:
            per_dim[t.dimension] = per_dim.get(t.dimension, 0) + 1
            if per_dim[t.dimension] > TOP_KEYS:
                continue
            if t.mttr_s is not None:
                self.mttr.labels(t.dimension, t.key).set(t.mttr_s)
            if t.mtta_s is not None:
                self.mtta.labels(t.dimension, t.key).set(t.mtta_s)
        for r in rep.recurring[:TOP_RECURRING]:
            self.recurring.labels(r.root_cause, ",".join(r.alert_names)).set(r.count)
        for e in rep.suggested_edges:
            self.suggested.labels(e.caller, e.callee).set(e.confidence)
        self.stale.set(sum(e.likely_stale for e in rep.stale_edges))
        self.refreshed.set(now)


@dataclass(frozen=True)
class Rendered:
    report: InsightsReport
    html: str


class LiveInsights:
    """The feed, and the last report it built (rendered) with its metrics."""

    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        topology: Topology,
        registry: CollectorRegistry,
    ) -> None:
        self.topology = topology
        self.metrics = InsightsMetrics(registry)
        self.settings = settings
        self.last: Rendered | None = None
        self.leads = False
        self.store = timed = store.with_timeout(STORE_TIMEOUT_S)
        lease = None
        if isinstance(timed, RedisStore):  # (stand-ins in tests: always feed)
            key = f"{settings.redis.key_prefix}{LEASE_KEY}"
            lease = RedisLease(timed.r, key, settings.insights.lease_s)
        self.feed = InsightsFeed(
            settings,
            timed,
            topology,
            self.publish,
            on_skip=lambda topic: self.metrics.skipped.labels(topic).inc(),
            on_write_failure=self.metrics.failures.inc,
            lease=lease,
            on_lead=self.lead,
        )

    def start(self) -> None:
        self.feed.start()

    def lead(self, leads: bool) -> None:
        """This process starts or stops feeding the insights (called on the feed's thread); a
        stand-by serves no report and exports no insights series."""
        self.leads = leads
        self.metrics.leader.set(1 if leads else 0)
        if not leads:
            self.last = None
            self.metrics.clear()

    def publish(self, rep: InsightsReport) -> None:
        """Serve ``rep`` (called on the feed's thread)."""
        view = render.view(rep, self.topology.graph, self.topology.name)
        self.last = Rendered(rep, render.html(view))  # the page first: metrics say it is there
        self.metrics.update(rep, time.time())
        if self.settings.insights.learned_edges:
            learned_edges.share(self.settings, self.store, rep)

    def document(self) -> dict[str, Any] | None:
        """The last report as JSON-ready data (None before the first one)."""
        return asdict(self.last.report) if self.last else None

    def close(self) -> None:
        self.feed.close()
