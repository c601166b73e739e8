"""Learned-edges mode in the worker (``insights.learned_edges``, off by default).

The process feeding the insights writes the suggested missing edges at or above
``insights.learned_edge_confidence`` to Redis with every report
(:func:`share`); every process with the ``correlate`` role reads them every
:data:`APPLY_INTERVAL_S` and, when they changed (or it holds a correlator it has not synced
yet), makes the calls its correlators learned from the incident history exactly those
(:class:`LearnedEdges`): new ones are added, and ones a report no longer suggests at that
confidence (the evidence stopped supporting them: the analysis runs over the newest
incidents only) are forgotten. Calls learned from alert labels are left alone.
"""

from __future__ import annotations

import msgspec
import structlog

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.partitions import PartitionStates
from pipeline.config import Settings
from pipeline.domain.correlate import Correlator
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


class LearnedEdges:
    """Keeps this process's correlators in step with the shared relations, touching them
    only when the relations change or a correlator is new here (a partition taken, or
    restored)."""

    def __init__(self) -> None:
        #: the relations last applied (as read), and the correlators synced to them
        self.data: bytes | None = None
        self.synced: dict[int, Correlator] = {}

    def apply(self, states: PartitionStates, data: bytes | None) -> tuple[int, int]:
        """Sync the correlators ``states`` holds with the shared relations ``data`` (on the
        event loop, between steps); returns how many calls were added and removed. Nothing
        shared yet (None) or relations that do not decode change nothing."""
        if data is None:
            return 0, 0
        changed = data != self.data
        todo = {
            part: pipe.correlator
            for part, pipe in states.pipelines.items()
            if changed or self.synced.get(part) is not pipe.correlator
        }
        if not todo:
            return 0, 0
        try:
            rels = learned.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("learned edges in Redis do not decode; ignored", error=str(exc)[:200])
            return 0, 0
        added = removed = 0
        for correlator in todo.values():
            a, r = correlator.sync_relations(rels)
            added, removed = added + a, removed + r
        self.data = data
        self.synced = {part: pipe.correlator for part, pipe in states.pipelines.items()}
        if added or removed:
            log.info(
                "learned edges synced to correlation",
                added=added,
                removed=removed,
                relations=len(rels),
            )
        return added, removed
