"""Learned-edges mode in the worker (``insights.learned_edges``, off by default).

The process feeding the insights writes the suggested missing edges at or above
``insights.learned_edge_confidence`` to Redis with every report
(:func:`share`); every process with the ``correlate`` role reads them every
:data:`APPLY_INTERVAL_S` and adds them to the correlators of the partitions it holds, and to
partitions it takes later at the next read (:func:`apply`). A call once learned
stays (it is checkpointed with the correlator, like a call learned from alert labels).
"""

from __future__ import annotations

import msgspec
import structlog

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.partitions import PartitionStates
from pipeline.config import Settings
from pipeline.domain.insights import InsightsReport, learned

log = structlog.get_logger("stormwatch.insights")

#: how often correlating processes read the relations (seconds)
APPLY_INTERVAL_S = 10.0


def share(settings: Settings, store: RedisStore, report: InsightsReport) -> None:
    """Write the report's relations for the correlators (on the insights feed's thread)."""
    rels = learned.relations(report.suggested_edges, settings.insights.learned_edge_confidence)
    try:
        store.set_learned_relations(learned.encode(rels))
    except Exception as exc:  # the next report writes them again
        log.warning("sharing the learned edges failed", error=str(exc))


def apply(states: PartitionStates, data: bytes | None) -> int:
    """Add the shared relations ``data`` to every correlator this process holds (on the
    event loop, between steps); returns how many calls were new."""
    if not data:
        return 0
    try:
        rels = learned.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("learned edges in Redis do not decode; ignored", error=str(exc)[:200])
        return 0
    added = sum(p.correlator.learn_relations(rels) for p in states.pipelines.values())
    if added:
        log.info("learned edges added to correlation", calls=added, relations=len(rels))
    return added
