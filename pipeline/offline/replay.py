"""Offline replay: the worker's stage chain over a file of alerts, event time from the alerts.

State lives in memory (a :class:`MemoryStore`), the lifecycle clock is the newest event time,
so a replay is deterministic and shows exactly what the streaming worker would have done.
Every incident lists all its member alerts in ``alert_ids`` (rebuilt from the membership
journal, whatever ``max_members`` is); ``alerts`` holds the members the incident still holds,
``alert_count`` and ``alert_counts`` count them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import msgspec

from pipeline.adapters.memory_store import MemoryStore
from pipeline.domain.correlate import CorrelationSettings
from pipeline.domain.correlate.journal import Memberships
from pipeline.domain.event_view import counts_of
from pipeline.domain.normalize import NormalizeError, normalize_obj
from pipeline.domain.pipeline import AlertPipeline
from pipeline.domain.schemas import Alert, Incident, RunbookRef
from pipeline.domain.scoring import AlertScorer
from pipeline.domain.topology import Topology
from pipeline.offline.jsonl import json_lines

END_OF_TIME = 1e12  # far future: every incident is allowed to finish its lifecycle
TICK_S = 1.0  # event-time clock resolution, like the worker's timer
_CHUNK = 1000  # alerts per call into the stage chain (its ticks follow event time regardless)
#: an incident's runbook (:class:`pipeline.domain.remediation.matching.RunbookIndex`)
Runbooks = Callable[[Incident], RunbookRef | None]


class ReplayInputError(ValueError):
    """The input file cannot be replayed; the message names the file and line."""


def read_alerts(path: Path) -> Iterator[Alert]:
    """Alerts from a JSON-lines file in any supported format; blank lines are skipped."""
    for lineno, obj in json_lines(path, ReplayInputError):
        try:
            yield from normalize_obj(obj)
        except msgspec.DecodeError as exc:  # a canonical alert that does not validate
            raise ReplayInputError(f"{path}:{lineno}: not valid JSON ({exc})") from None
        except (NormalizeError, ValueError, TypeError) as exc:
            raise ReplayInputError(f"{path}:{lineno}: {exc}") from None


def replay_alerts(
    topology: Topology,
    alerts: Iterable[Alert],
    settings: CorrelationSettings | None = None,
    *,
    scorer: AlertScorer | None = None,
    on_alert: Callable[[], None] | None = None,
    runbooks: Runbooks | None = None,
    relations: Sequence[tuple[str, str, float]] = (),
) -> list[Incident]:
    """Run alerts (in file order) through the stage chain; return every incident, final state
    (``runbooks``: the annotate stage's runbook choice, as the worker's; ``relations``: calls
    learned from the incident history, the insights' learned-edges mode)."""
    pipeline = AlertPipeline(topology, correlation=settings, scorer=scorer, runbooks=runbooks)
    pipeline.correlator.learn_relations(relations)
    store = MemoryStore()
    final: dict[str, Incident] = {}
    batch: list[Alert] = []
    members = Memberships()

    def flush() -> None:
        outcome = pipeline.process_in_event_time(batch, store.dedup, tick_s=TICK_S)
        store.dedup.update(outcome.dedup_states)
        for ev in outcome.events:
            final[ev.incident.id] = ev.incident
        batch.clear()
        members.apply(pipeline.take_membership())

    for alert in alerts:
        batch.append(alert)
        if on_alert is not None:
            on_alert()
        if len(batch) >= _CHUNK:
            flush()
    flush()
    for ev in pipeline.tick(END_OF_TIME):
        final[ev.incident.id] = ev.incident
    for inc in pipeline.correlator.incidents():
        final[inc.id] = inc
    members.apply(pipeline.take_membership())
    return [with_members(inc, members.of(iid)) for iid, inc in final.items() if not inc.merged_into]


def with_members(inc: Incident, alert_ids: list[str]) -> Incident:
    """``inc`` listing every member in ``alert_ids`` (from the membership journal: a big
    incident holds only ``max_members`` itself) and its counts most first."""
    return msgspec.structs.replace(inc, alert_ids=alert_ids, alert_counts=counts_of(inc))


def incident_record(inc: Incident) -> dict[str, Any]:
    """The replay output line: the whole incident (contract fields first)."""
    data: dict[str, Any] = msgspec.to_builtins(inc)
    head = [
        "id",
        "alert_ids",
        "root_cause",
        "root_cause_candidates",
        "services",
        "opened_at",
        "resolved_at",
        "explanation",
    ]
    return {**{k: data[k] for k in head}, **{k: v for k, v in data.items() if k not in head}}


def write_incidents(incidents: Iterable[Incident], out: IO[str]) -> int:
    n = 0
    for inc in incidents:
        out.write(json.dumps(incident_record(inc), separators=(",", ":")) + "\n")
        n += 1
    return n
