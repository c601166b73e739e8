"""Topology-aware streaming correlation: one fault, one incident, root cause named first.

An alert joins an open incident when it is close in event time (within ``join_gap_s`` of the
incident's alerts) and related in the service graph:

* same service, or a dependency path within ``hops`` (either direction);
* a shared direct dependency (two callers of one silent service);
* the blast radius of the incident's root cause (any transitive caller);
* only when nothing closer relates it, within ``undirected_burst_s`` of the incident's first
  alert: a path within ``hops`` ignoring edge direction (robustness to calls missing from the
  topology);
* for services missing from the topology: same service, or a shared value of one of the
  ``link_labels`` (never dropped: with no relation they open their own incident).

An incident takes no new alerts after the first whole multiple of ``max_span_s`` at least half
of it after its first alert (:func:`~.settings.span_end`): an endless storm is cut into
incidents of bounded span on a fixed grid, so memory is bounded by the open incidents and a
cut that moved does not move the later ones.

An incident holds at most ``max_members`` member alerts (:mod:`.compaction`): past that, it
forgets members down to half of it, resolved ones first, then the oldest firing ones, so a
storm of a million alerts within ``max_span_s`` keeps the worker's memory flat. Forgotten
members are counted, not listed: ``alert_count``, the counts per (service, alert name), the
ranking's evidence, first-seen times, severity and the paging tally include them; the
membership journal (Redis, ``replay``) lists them. A forgotten series that resolves later is
not tracked (the incident resolves once the members it tracks resolved and it was quiet for
``quiet_period_s``); one that fires again relates to incidents through the graph like any
alert. An incident records the first ``max_labels`` link-label values it sees.

Otherwise it opens a new incident. When incidents turn out to share a cause (their root
causes are the same service, or one root is in the other's blast radius) they merge.
A firing alert whose fingerprint is still firing in an open incident rejoins it, as does a
flapping one (flapping never opens new incidents); a recurrence of a member of a recently
resolved incident reopens it, unless it relates to an open incident (which it then joins).
A reopen is provisional for ``burst_merge_s``: a series the incident never had joining it
means the recurrence started a new burst, and the alerts since the reopen move to a new
incident.

Lifecycle: ``open`` -> (``acknowledged``) -> ``resolved`` once every member alert is resolved
and the incident has been quiet for ``quiet_period_s``; ``reopened`` when a member alert fires
again within ``reopen_window_s``. Paging follows per-severity N-of-M gates. Symptom alerts
beneath an established root cause are attached and marked ``suppressed``.

The parts, each pure (no I/O, deterministic, event-time driven):

* :mod:`.correlator`: ``Correlator``, the public entry point; routes alerts, ticks, feedback;
* :mod:`.settings`: ``CorrelationSettings``, every knob;
* :mod:`.state`: per-incident state and counts, the summary of forgotten members, snapshot
  codec, the book of incidents and series;
* :mod:`.relate`: the join indices and the relations an alert joins an incident by;
* :mod:`.membership`: opening an incident, an alert joining one, a member resolving;
* :mod:`.ranking`: when to re-rank, confirmed root cause, suppression, explanation;
* :mod:`.paging`: the N-of-M paging gate;
* :mod:`.compaction`: bounding an incident's members (what it forgets, what it keeps);
* :mod:`.merging`: merging incidents that share a cause or a burst;
* :mod:`.lifecycle` and :mod:`.schedule`: resolve, reopen, split a reopen, evict; due times;
* :mod:`.feedback`: applying a responder's feedback;
* :mod:`.controls`: controls from the cross-domain merge stage (``span_start``,
  ``split_reopened``; nothing changes without them);
* :mod:`.journal`: membership changes, for the store and replay.

The root-cause ranking is in :mod:`pipeline.domain.rootcause`, texts in
:mod:`pipeline.domain.explain`.
"""

from pipeline.domain.correlate.correlator import Correlator
from pipeline.domain.correlate.settings import CorrelationSettings
from pipeline.domain.correlate.state import incident_id

__all__ = ["CorrelationSettings", "Correlator", "incident_id"]
