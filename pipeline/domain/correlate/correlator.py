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

An incident older than ``max_span_s`` takes no new alerts (an endless storm is cut into
incidents of bounded span, so memory is bounded by the open incidents).

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

The root-cause ranking is in :mod:`pipeline.domain.rootcause`, texts in
:mod:`pipeline.domain.explain`. Pure domain logic: no I/O, deterministic, event-time driven.
"""

from __future__ import annotations

import bisect

from pipeline.domain.correlate.feedback import FeedbackApplier
from pipeline.domain.correlate.lifecycle import Lifecycle
from pipeline.domain.correlate.merging import Merger
from pipeline.domain.correlate.paging import PagingGate, count_member
from pipeline.domain.correlate.ranking import Ranker
from pipeline.domain.correlate.relate import JoinIndex
from pipeline.domain.correlate.schedule import Scheduler
from pipeline.domain.correlate.settings import CorrelationSettings
from pipeline.domain.correlate.state import (
    Book,
    IncidentState,
    Member,
    decode_snapshot,
    emit,
    encode_snapshot,
    incident_id,
    mark_resolved,
)
from pipeline.domain.explain import fmt_delay
from pipeline.domain.fingerprint import fingerprint
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.rootcause import (
    KindClassifier,
)
from pipeline.domain.schemas import (
    SEVERITY_RANK,
    Alert,
    AlertRef,
    AlertStatus,
    EventType,
    Feedback,
    Incident,
    IncidentEvent,
    IncidentStatus,
)
from pipeline.domain.topology import Topology

_EVENT_PRIORITY = {
    EventType.opened: 0,
    EventType.reopened: 1,
    EventType.merged: 2,
    EventType.root_cause_changed: 3,
    EventType.escalated: 4,
    EventType.resolved: 5,
    EventType.updated: 6,
}


class Correlator:
    """Streaming correlator over one topology (see module docstring)."""

    def __init__(self, topology: Topology, settings: CorrelationSettings | None = None) -> None:
        self.topology = topology
        self.settings = settings or CorrelationSettings()
        s = self.settings
        self.graph = GraphIndex(topology, s.hops)
        self._kind = KindClassifier(s.kind_patterns)
        self.gate = PagingGate(s)
        self.book = Book()
        self._states = self.book.states
        self.ranker = Ranker(self.graph, s)
        self._fp_index = self.book.series
        self.index = JoinIndex(self.graph, s, self.book.states)
        self.scheduler = Scheduler(s)
        self.lifecycle = Lifecycle(s, self.book, self.index, self.ranker, self.gate, self.scheduler)
        self.merger = Merger(
            s, self.graph, self.book, self.index, self.ranker, self.gate, self.scheduler
        )
        self.feedback = FeedbackApplier(
            self.book, self.index, self.ranker, self.scheduler, self.merger
        )
        self._watermark = float("-inf")

    # ------------------------------------------------------------------ public interface

    def process(self, alert: Alert) -> list[IncidentEvent]:
        """One deduplicated alert event; returns the incident events it caused."""
        t = alert.epoch
        if t > self._watermark:
            self._watermark = t
        fp = fingerprint(alert)
        if alert.status is AlertStatus.resolved:
            return self._on_resolved(alert, fp, t)
        return self._on_firing(alert, fp, t)

    def advance(self, now: float) -> list[IncidentEvent]:
        """Clock tick: resolve quiet incidents, close joins that can no longer happen, evict."""
        if now > self._watermark:
            self._watermark = now
        return self.lifecycle.advance(now)

    def apply_feedback(self, fb: Feedback) -> list[IncidentEvent]:
        """A responder's feedback on an incident; returns the incident events it caused."""
        return self.feedback.apply(fb)

    def incidents(self) -> list[Incident]:
        return [st.inc for st in self._states.values()]

    def get(self, incident_id: str) -> Incident | None:
        st = self._states.get(incident_id)
        return st.inc if st is not None else None

    def snapshot(self) -> bytes:
        return encode_snapshot(self._watermark, list(self._states.values()))

    @classmethod
    def restore(
        cls, topology: Topology, settings: CorrelationSettings | None, data: bytes
    ) -> Correlator:
        snap = decode_snapshot(data)
        c = cls(topology, settings)
        c._watermark = snap.watermark
        for st in snap.states:
            c._states[st.inc.id] = st
            for fp in st.fp_last:
                c._fp_index[fp] = st.inc.id
            if st.indexed:
                st.indexed = False
                c.index.index(st)
            c.scheduler.schedule(st)
        return c

    # ------------------------------------------------------------------ alert handling

    def _on_resolved(self, alert: Alert, fp: str, t: float) -> list[IncidentEvent]:
        iid = self._fp_index.get(fp)
        if iid is None:
            return []
        st = self._states[iid]
        idx = st.firing.pop(fp, None)
        if idx is None:
            return []
        mark_resolved(st, idx, t)
        if t > st.last_change_t:
            st.last_change_t = t
        st.inc.updated_at = alert.timestamp
        self.scheduler.schedule(st)
        m = st.members[idx]
        return [emit(st, EventType.updated, alert.timestamp, f"alert {m.service} resolved")]

    def _on_firing(self, alert: Alert, fp: str, t: float) -> list[IncidentEvent]:
        s = self.settings
        iid = self._fp_index.get(fp)
        if iid is not None:
            st = self._states[iid]
            inc = st.inc
            if inc.status is not IncidentStatus.resolved:
                if fp in st.firing:
                    return self._join(
                        st, alert, fp, t, "repeat notification of a firing alert", EventType.updated
                    )
                lo = t - s.flap_window_s
                fires = 1 + sum(1 for x in st.fires.get(fp, ()) if x >= lo)
                if fires >= s.flap_min_fires and not self.index.too_old(st, t):
                    reason = f"flapping: fired {fires} times within {fmt_delay(s.flap_window_s)}"
                    return self._join(st, alert, fp, t, reason, EventType.updated)
            elif self.lifecycle.can_reopen(st, t) and not self.index.matches(
                alert, alert.service, t
            ):
                # (an alert that relates to an open incident joins it instead: the ongoing
                # problem explains it better than a recurrence of a finished one)
                reason = self.lifecycle.reopen(st, t)
                return self._join(st, alert, fp, t, reason, EventType.reopened)
        service = alert.service
        matches = self.index.matches(alert, service, t)
        if not matches:
            return self._open(alert, fp, t)
        self.index.sort_best_first(matches)
        best = matches[0][1]
        st = self._states[best]
        split: list[IncidentEvent] = []
        split_detail = ""
        if self.lifecycle.is_new_burst(st, fp, t):
            # a series the incident never had joins right after a recurrence reopened it: the
            # recurrence was the first alert of a new burst, not the old problem coming back
            split_ev, split_detail, st = self.lifecycle.split_reopened(st, alert.timestamp)
            split = [split_ev]
        reason = self.index.reason(matches[0], service, t - st.first_t)
        events = self._join(st, alert, fp, t, reason, EventType.updated)
        if split:
            events[0].type = EventType.opened
            events[0].detail = split_detail + "; " + events[0].detail
            events = [*split, *events]
        if s.merge and len(matches) > 1:
            others = [m[1] for m in matches[1:]]
            events.extend(self.merger.merge_shared(st, others, alert.timestamp))
        return events

    def _open(self, alert: Alert, fp: str, t: float) -> list[IncidentEvent]:
        iid = self.book.free_id(alert.id)
        ts = alert.timestamp
        inc = Incident(
            id=iid,
            status=IncidentStatus.open,
            opened_at=ts,
            updated_at=ts,
            severity=alert.severity,
            domain=self.topology.domain(alert.service, alert.labels),
            page=False,
        )
        st = IncidentState(inc=inc, first_t=t, last_t=t, last_change_t=t)
        self._states[iid] = st
        self.index.index(st)
        return self._join(st, alert, fp, t, "first alert of the incident", EventType.opened)

    def _join(
        self, st: IncidentState, alert: Alert, fp: str, t: float, reason: str, etype: EventType
    ) -> list[IncidentEvent]:
        s = self.settings
        inc = st.inc
        service = alert.service
        kind = self._kind(alert.name, alert.labels)
        sev = SEVERITY_RANK[alert.severity]
        ref = AlertRef(
            id=alert.id,
            service=service,
            name=alert.name,
            severity=alert.severity,
            status=AlertStatus.firing,
            timestamp=alert.timestamp,
            reason=reason,
        )
        idx = len(st.members)
        st.members.append(Member(fp, service, kind, sev, t, len(inc.alerts)))
        count_member(st, sev)
        inc.alerts.append(ref)
        inc.alert_ids.append(alert.id)
        prev_id = self._fp_index.get(fp)
        if prev_id is not None and prev_id != inc.id:
            prev_st = self._states.get(prev_id)
            if prev_st is not None and fp in prev_st.firing:
                # the series moved to this incident: its old firing entry is superseded
                mark_resolved(prev_st, prev_st.firing.pop(fp), t)
                self.scheduler.schedule(prev_st)
        st.firing[fp] = idx
        st.fp_last[fp] = idx
        times = st.fires.get(fp)
        if times is None:
            # carry the series' recent fires over from the incident it last belonged to
            prev = self._states.get(self._fp_index.get(fp, ""))
            st.fires[fp] = [*prev.fires.get(fp, ()), t] if prev is not None else [t]
        else:
            times.append(t)
            if len(times) > 2 * s.flap_min_fires:
                del times[: len(times) - s.flap_min_fires]
        self._fp_index[fp] = inc.id
        if t > st.last_t:
            st.last_t = t
        if t < st.first_t:
            st.first_t = t
            inc.opened_at = alert.timestamp
        if t > st.last_change_t:
            st.last_change_t = t
        inc.updated_at = alert.timestamp
        details = [f"{service} {alert.name}: {reason}"]
        if st.indexed:
            self.index.index_service(st, service)
            if alert.labels:
                self.index.index_labels(st, alert.labels)
        # evidence and ranking
        kinds = st.evidence.get(service)
        changed = False
        if kinds is None:
            st.evidence[service] = [kind]
            st.first_seen[service] = t
            bisect.insort(inc.services, service)
            changed = True
        else:
            if kind not in kinds:
                kinds.append(kind)
                kinds.sort()
                changed = True
            if t < st.first_seen[service]:
                st.first_seen[service] = t
                changed = True
        if sev > SEVERITY_RANK[inc.severity]:
            inc.severity = alert.severity
            if etype is EventType.updated:
                etype = EventType.escalated
            details.append(f"severity raised to {alert.severity.value}")
        old_root = inc.root_cause
        # flagged before a re-rank, so the explanation it rebuilds names this symptom too
        ref.suppressed = self.ranker.is_symptom(st, service, kind)
        if changed:
            self.ranker.evidence_changed(st)
        if inc.root_cause != old_root and old_root is not None:
            if _EVENT_PRIORITY[EventType.root_cause_changed] < _EVENT_PRIORITY[etype]:
                etype = EventType.root_cause_changed
            details.append(f"root cause {old_root} -> {inc.root_cause}")
        gate = st.gate or self._gate(st, t)
        if gate != st.gate:
            st.gate = gate
            if gate:
                inc.page = True
                if etype is EventType.updated:
                    etype = EventType.escalated
                details.append("paging gate reached")
        self.scheduler.schedule(st)
        return [emit(st, etype, alert.timestamp, "; ".join(details))]

    def _gate(self, st: IncidentState, t: float) -> bool:
        return self.gate.reached(st, t)


__all__ = ["CorrelationSettings", "Correlator", "incident_id"]
