"""The correlate state this process owns: one stage chain per by-domain partition.

Each partition's state is restored from its Redis checkpoint on first use (or when the
partition is assigned), with the offset it covers and the updates its last owner held back.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable

import msgspec

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.runbooks import runbook_index
from pipeline.app.steps import Step
from pipeline.config import Settings
from pipeline.domain.alignment import EventTimeAligner
from pipeline.domain.pipeline import AlertPipeline
from pipeline.domain.schemas import (
    EventType,
    Incident,
    IncidentEvent,
    IncidentStatus,
    ResponderRef,
)
from pipeline.domain.scoring import AlertScorer
from pipeline.domain.throttle import UpdateThrottle
from pipeline.domain.topology import Topology

_held_encoder = msgspec.msgpack.Encoder()
_held_decoder = msgspec.msgpack.Decoder(list[str])


class PartitionStates:
    """Stage chains, update throttles, alignment buffers, applied offsets and event clocks
    per partition."""

    def __init__(
        self, settings: Settings, topology: Topology, store: RedisStore, scorer: AlertScorer
    ) -> None:
        self.settings = settings
        self.topology = topology
        self.store = store
        self.scorer = scorer
        self.runbooks = runbook_index(settings, topology)
        #: an incident's recommended responders (set by the worker; None: not recommended)
        self.responders: Callable[[Incident], list[ResponderRef]] | None = None
        self.pipelines: dict[int, AlertPipeline] = {}
        self.throttles: dict[int, UpdateThrottle] = {}
        self.aligners: dict[int, EventTimeAligner] = {}
        #: partition -> stream id of the last merge-stage control applied (split topologies)
        self.controls_applied: dict[int, str] = {}
        #: partition -> highest by-domain offset its in-memory state has applied
        self.applied: dict[int, int] = {}
        #: partition -> newest event time seen (the event clock's lifecycle ticks)
        self.event_clock: dict[int, float] = {}
        #: partition -> when alerts or marks last reached it (monotonic clock)
        self.touched: dict[int, float] = {}
        #: partition -> messages wait for it (as of its last step; split topologies)
        self.lagging: dict[int, bool] = {}

    def pipeline(self, partition: int) -> AlertPipeline:
        """The stage chain for a partition, restored from its checkpoint on first use
        (blocking Redis reads: call through :class:`StoreRetry` from the event loop)."""
        pipe = self.pipelines.get(partition)
        if pipe is None:
            data = self.store.load_checkpoint(f"pipeline:{partition}")
            offset = self.store.load_checkpoint(f"offset:{partition}")
            held = self.store.load_checkpoint(f"held:{partition}")
            waiting = self.store.load_checkpoint(f"align:{partition}")
            ctl = self.store.load_checkpoint(f"ctlpos:{partition}")
            self.controls_applied[partition] = ctl.decode() if ctl else "0"
            pipe = AlertPipeline(
                self.topology,
                correlation=self.settings.correlation,
                scorer=self.scorer,
                runbooks=self.runbooks,
                responders=self.responders,
            )
            if data:
                pipe.restore(data)
            throttle = self.throttle(partition)
            for iid in _held_decoder.decode(held) if held else []:
                inc = pipe.incident(iid)
                if inc is not None:  # an update held when the last owner stopped: due now
                    throttle.hold(
                        IncidentEvent(type=EventType.updated, incident=inc, at=inc.updated_at)
                    )
            aligner = self.aligner(partition)
            if waiting:
                aligner.restore(waiting)
            self.applied[partition] = int(offset) if offset else -1
            self.pipelines[partition] = pipe
        return pipe

    def throttle(self, partition: int) -> UpdateThrottle:
        th = self.throttles.get(partition)
        if th is None:
            th = self.throttles[partition] = UpdateThrottle(self.settings.worker.update_interval_s)
        return th

    def aligner(self, partition: int) -> EventTimeAligner:
        al = self.aligners.get(partition)
        if al is None:
            w = self.settings.worker
            al = self.aligners[partition] = EventTimeAligner(
                w.max_held_alerts, max_release=w.max_step_alerts
            )
        return al

    def align(self, step: Step, limit: float = math.inf) -> None:
        """Hold the step's alerts back until the watermark (and ``limit``: how far the other
        domains have got) passes them; the step goes on with the alerts it releases
        (:mod:`pipeline.domain.alignment`)."""
        aligner = self.aligner(step.partition)
        aligner.observe(step.marks)
        now = time.monotonic()
        if step.alerts or step.marks:
            self.touched[step.partition] = now
        if step.alerts:
            aligner.add(step.alerts, step.arrivals)
        step.alerts, step.arrivals = aligner.release(limit)
        if step.alerts:
            self.touched[step.partition] = now
        else:  # nothing came nor went for a while: what it waits for will not come
            quiet = now - self.touched.setdefault(step.partition, now)
            step.alerts, step.arrivals = aligner.release_stale(quiet)

    def progress(self, partition: int) -> float:
        """Event time before which the partition will correlate no more alerts, as far as
        it knows: while it holds alerts, what its aligner says (the watermark while an input
        is behind, else the oldest alert held); else, while messages wait for it, the newest
        event time it has correlated; else (caught up, nothing held, or never an alert) inf:
        it holds no other domain back (a stale figure from an idle partition would)."""
        aligner = self.aligner(partition)
        if len(aligner):
            return aligner.progress()
        if self.lagging.get(partition, False) and partition in self.event_clock:
            return self.event_clock[partition]
        return math.inf

    def held(self) -> int:
        """Alerts waiting for alignment in every partition."""
        return sum(len(a) for a in self.aligners.values())

    def paced(self) -> int:
        """Partitions held back only by the other domains' progress (as of their last step)."""
        return sum(1 for al in self.aligners.values() if al.paced())

    def ready(self) -> list[int]:
        """Partitions holding alerts their last step passed but left for the next one
        (``worker.max_step_alerts``)."""
        return [p for p, al in self.aligners.items() if al.ready() and p in self.pipelines]

    def checkpoints(self, partition: int) -> dict[str, bytes]:
        """What a group commit writes for the partition: its stage chain, the ids of updates
        held back, the alerts waiting for alignment, and the by-domain offset the state
        covers."""
        pipe = self.pipelines.get(partition)
        if pipe is None:
            return {}
        return {
            f"pipeline:{partition}": pipe.snapshot(),
            f"held:{partition}": _held_encoder.encode(self.throttle(partition).held_ids()),
            f"align:{partition}": self.aligner(partition).snapshot(),
            f"ctlpos:{partition}": self.controls_applied.get(partition, "0").encode(),
            f"offset:{partition}": str(self.applied.get(partition, -1)).encode(),
        }

    def forget(self, partition: int) -> None:
        self.pipelines.pop(partition, None)
        self.throttles.pop(partition, None)
        self.aligners.pop(partition, None)
        self.controls_applied.pop(partition, None)
        self.applied.pop(partition, None)

    def local_domain(self, incident_id: str) -> str | None:
        """The correlation domain of an incident this process holds (None: not here)."""
        for pipe in self.pipelines.values():
            inc = pipe.incident(incident_id)
            if inc is not None:
                return inc.domain or incident_id
        return None

    def open_by_root_cause(self) -> Counter[str | None]:
        """Open incidents of every local partition by root cause (None: not named)."""
        return Counter(
            inc.root_cause
            for p in self.pipelines.values()
            for inc in p.correlator.incidents()
            if inc.status is not IncidentStatus.resolved and not inc.merged_into
        )

    def open_incidents(self) -> int:
        return sum(
            1
            for p in self.pipelines.values()
            for inc in p.correlator.incidents()
            if inc.status is not IncidentStatus.resolved and not inc.merged_into
        )
