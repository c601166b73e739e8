"""Offline replay of the partitioned pipeline: a connected topology split into correlation
domains (:mod:`pipeline.domain.domains`), one ``AlertPipeline`` per by-domain partition, the
cross-domain merge stage (:mod:`pipeline.domain.merge`) in between, as the workers will run it.

Alerts are replayed in file order in steps of ``step`` alerts (a worker's backlog step): each
partition's pipeline processes its share of the step with the event-time clock, then every
pipeline's lifecycle timer ticks to the step's time; the summaries of the step go to the
merge stage, its controls back to their partitions (their events join the next step), and
its watermark moves to the step's time less ``allowed_lateness_s``. Incidents are written as
``replay`` writes them: final state, every member in ``alert_ids`` (a cross-domain group
lists the members of all its per-domain incidents). With one domain per component (``k =
1``) the output is exactly :func:`~pipeline.offline.replay.replay_alerts`'.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from pipeline.adapters.memory_store import MemoryStore
from pipeline.domain.correlate import CorrelationSettings
from pipeline.domain.correlate.journal import Memberships
from pipeline.domain.domains import DomainMap
from pipeline.domain.event_view import EventLimits
from pipeline.domain.merge import MergeOutput, Merger, SummaryDeriver, apply_control
from pipeline.domain.pipeline import AlertPipeline, event_tick
from pipeline.domain.schemas import Alert, Incident, IncidentEvent
from pipeline.domain.scoring import AlertScorer
from pipeline.domain.topology import Topology
from pipeline.offline.replay import END_OF_TIME, TICK_S, Runbooks, with_members

STEP = 1000  # alerts per step, like a worker's backlog step


@dataclass
class _Partition:
    pipe: AlertPipeline
    store: MemoryStore = field(default_factory=MemoryStore)
    members: Memberships = field(default_factory=Memberships)
    deriver: SummaryDeriver = field(default_factory=lambda: SummaryDeriver(0))


@dataclass
class PartitionedStats:
    """Counts of one partitioned replay."""

    partitions: int = 0
    summaries: int = 0
    relevant_summaries: int = 0
    controls: int = 0
    unions: int = 0
    events: int = 0
    peak_records: int = 0
    merge_cpu_s: float = 0.0  # process CPU time in the merge stage (on_batch, advance)


class PartitionedReplay:
    """The partitioned pipeline over one alert stream (see module docstring)."""

    def __init__(
        self,
        topology: Topology,
        domains: DomainMap,
        settings: CorrelationSettings | None = None,
        *,
        scorer: AlertScorer | None = None,
        step: int = STEP,
        limits: EventLimits | None = None,
        runbooks: Runbooks | None = None,
    ) -> None:
        self.domains = domains
        self.runbooks = runbooks
        self.topology = domains.apply(topology)
        self.settings = settings or CorrelationSettings()
        self.scorer = scorer
        self.step = step
        self.merger = Merger(self.topology, self.settings, limits, runbooks)
        self.parts: dict[int, _Partition] = {}
        self.final: dict[str, Incident] = {}
        self.parent: dict[str, str] = {}  # absorbed group id -> surviving group id
        self.carry: dict[int, list[IncidentEvent]] = {}  # events caused by controls
        self.stats = PartitionedStats()

    def run(
        self, alerts: Iterable[Alert], on_alert: Callable[[], None] | None = None
    ) -> list[Incident]:
        for chunk in _chunks(alerts, self.step, on_alert):
            self._step(chunk)
        events = self._take_carry()
        for p, part in sorted(self.parts.items()):
            events.setdefault(p, []).extend(part.pipe.tick(END_OF_TIME))
        self._feed(events)
        self._publish(self.merger.finish())
        for part in self.parts.values():
            for inc in part.pipe.correlator.incidents():
                if self.merger.group_of(inc.id) == inc.id and self._root(inc.id) == inc.id:
                    self.final[inc.id] = inc
            part.members.apply(part.pipe.take_membership())
        return self._incidents()

    # ------------------------------------------------------------------ steps

    def _step(self, alerts: list[Alert]) -> None:
        by_partition: dict[int, list[Alert]] = {}
        dm = self.domains
        for a in alerts:
            by_partition.setdefault(dm.partition(dm.domain(a.service, a.labels)), []).append(a)
        events = self._take_carry()
        for p in sorted(by_partition):
            part = self._part(p)
            out = part.pipe.process_in_event_time(by_partition[p], part.store.dedup, tick_s=TICK_S)
            part.store.dedup.update(out.dedup_states)
            events.setdefault(p, []).extend(out.events)
        now = event_tick(alerts[-1].epoch, TICK_S)
        for p, part in sorted(self.parts.items()):
            events.setdefault(p, []).extend(part.pipe.tick_in_event_time(now, TICK_S))
        self._feed(events)
        t0 = time.process_time()
        self.merger.advance(now - self.settings.allowed_lateness_s)
        self.stats.merge_cpu_s += time.process_time() - t0
        self.stats.peak_records = max(self.stats.peak_records, len(self.merger.state.records))

    def _part(self, p: int) -> _Partition:
        part = self.parts.get(p)
        if part is None:
            pipe = AlertPipeline(
                self.topology, correlation=self.settings, scorer=self.scorer, runbooks=self.runbooks
            )
            part = self.parts[p] = _Partition(pipe, deriver=SummaryDeriver(p))
            self.stats.partitions = len(self.parts)
        return part

    def _take_carry(self) -> dict[int, list[IncidentEvent]]:
        events, self.carry = self.carry, {}
        return events

    def _feed(self, events: dict[int, list[IncidentEvent]]) -> None:
        summaries = []
        for p in sorted(events):
            part = self.parts[p]
            summaries.extend(part.deriver.derive(part.pipe, events[p]))
            part.members.apply(part.pipe.take_membership())
        self.stats.summaries += len(summaries)
        self.stats.relevant_summaries += sum(1 for s in summaries if s.relevant)
        t0 = time.process_time()
        out = self.merger.on_batch(summaries)
        self.stats.merge_cpu_s += time.process_time() - t0
        self._publish(out)

    def _publish(self, out: MergeOutput) -> None:
        self.stats.events += len(out.events)
        for ev in out.events:
            self.final[ev.incident.id] = ev.incident
        for absorbed, survivor in out.unions:
            self.parent[absorbed] = survivor
        self.stats.unions += len(out.unions)
        self.stats.controls += len(out.controls)
        for c in out.controls:
            part = self.parts.get(c.partition)
            if part is not None:
                self.carry.setdefault(c.partition, []).extend(apply_control(part.pipe, c))

    # ------------------------------------------------------------------ output

    def _root(self, iid: str) -> str:
        while iid in self.parent:
            iid = self.parent[iid]
        return iid

    def _incidents(self) -> list[Incident]:
        members: dict[str, list[str]] = {}
        for part in self.parts.values():
            for iid, alert_ids in part.members.members.items():
                if alert_ids:
                    members.setdefault(self._root(iid), []).extend(alert_ids)
        return [
            with_members(inc, members.get(iid, []))
            for iid, inc in self.final.items()
            if not inc.merged_into
        ]


def replay_partitioned(
    topology: Topology,
    alerts: Iterable[Alert],
    domains: DomainMap,
    settings: CorrelationSettings | None = None,
    *,
    scorer: AlertScorer | None = None,
    on_alert: Callable[[], None] | None = None,
    step: int = STEP,
    runbooks: Runbooks | None = None,
) -> list[Incident]:
    """Every incident of the partitioned pipeline, final state (see module docstring)."""
    return PartitionedReplay(
        topology, domains, settings, scorer=scorer, step=step, runbooks=runbooks
    ).run(alerts, on_alert)


def _chunks(
    alerts: Iterable[Alert], size: int, on_alert: Callable[[], None] | None
) -> Iterator[list[Alert]]:
    chunk: list[Alert] = []
    for a in alerts:
        chunk.append(a)
        if on_alert is not None:
            on_alert()
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
