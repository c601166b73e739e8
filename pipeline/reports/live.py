"""The insights report over the live store: the incident records and feedback lists the
workers keep in Redis (``stormwatch report --since``, the worker's ``/insights``)."""

from __future__ import annotations

import msgspec

from pipeline.adapters.redis_store import RedisStore
from pipeline.domain.insights import Insights, InsightsReport, InsightsSettings
from pipeline.domain.schemas import Feedback, Incident
from pipeline.domain.topology import Topology

_record_decoder = msgspec.json.Decoder(Incident)
#: incidents whose feedback lists are read in one round trip
_BATCH = 500


def store_report(
    store: RedisStore,
    since_s: float,
    now: float,
    topology: Topology | None = None,
    settings: InsightsSettings | None = None,
) -> tuple[InsightsReport, int]:
    """The report over the closed incidents the store holds that opened within ``since_s``
    before ``now``, with their feedback lists; and how many records could not be read (they
    are skipped: a report must not fail on one bad record). Closed records expire
    ``redis.incident_ttl_s`` after closing (30 days by default), which bounds how far back
    this reaches."""
    insights = Insights(settings, team_of=topology.team if topology else None)
    unreadable = 0
    batch: list[Incident] = []

    def flush() -> None:
        nonlocal unreadable
        lists = store.feedback_for_many([inc.id for inc in batch])
        for inc, feedback in zip(batch, lists, strict=True):
            for fb_raw in feedback:
                try:
                    insights.observe_feedback(msgspec.json.decode(fb_raw, type=Feedback))
                except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                    unreadable += 1
            insights.observe_incident(inc)
        batch.clear()

    for raw in store.incident_records():
        try:
            inc = _record_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            unreadable += 1
            continue
        if inc.resolved_at is None or inc.opened_at.timestamp() < now - since_s:
            continue
        batch.append(inc)
        if len(batch) >= _BATCH:
            flush()
    flush()
    return insights.report(topology.graph if topology else None), unreadable
