"""Alerts as incident members: opening an incident, an alert joining one, a member resolving.

Joining records the alert (its series moves to the incident), updates the evidence the
ranking works from and the incident's counts, flags the alert ``suppressed`` when it is a
symptom of the established root cause, re-ranks, checks the paging gate, compacts an
incident grown past ``max_members`` (:mod:`.compaction`), and returns one event whose type is
the most important change: ``opened``/``reopened`` > ``root_cause_changed`` > ``escalated``
(severity raised or paging gate reached) > ``updated``.
"""

from __future__ import annotations

import bisect

from pipeline.domain.correlate.compaction import compact
from pipeline.domain.correlate.labels import add_alert
from pipeline.domain.correlate.paging import PagingGate, count_member
from pipeline.domain.correlate.ranking import Ranker
from pipeline.domain.correlate.relate import JoinIndex
from pipeline.domain.correlate.schedule import Scheduler
from pipeline.domain.correlate.settings import CorrelationSettings
from pipeline.domain.correlate.state import (
    Book,
    IncidentState,
    Member,
    count_alert,
    emit,
    mark_resolved,
    members_in_all,
)
from pipeline.domain.explain import fmt_delay
from pipeline.domain.rootcause import KindClassifier
from pipeline.domain.schemas import (
    SEVERITY_RANK,
    Alert,
    AlertRef,
    AlertStatus,
    EventType,
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


class Membership:
    """Adds alerts to incidents and resolves them there (see module docstring)."""

    __slots__ = (
        "_kind",
        "book",
        "gate",
        "index",
        "ranker",
        "scheduler",
        "settings",
        "topology",
    )

    def __init__(
        self,
        topology: Topology,
        settings: CorrelationSettings,
        book: Book,
        index: JoinIndex,
        ranker: Ranker,
        gate: PagingGate,
        scheduler: Scheduler,
    ) -> None:
        self.topology = topology
        self.settings = settings
        self.book = book
        self.index = index
        self.ranker = ranker
        self.gate = gate
        self.scheduler = scheduler
        self._kind = KindClassifier(settings.kind_patterns)

    def flap_reason(self, st: IncidentState, fp: str, t: float) -> str | None:
        """Why series ``fp`` firing again at ``t`` rejoins ``st`` as flapping, or None.

        Flapping: ``flap_min_fires`` fires within ``flap_window_s``, this one included, while
        ``st`` is within its ``max_span_s``.
        """
        s = self.settings
        lo = t - s.flap_window_s
        fires = 1 + sum(1 for x in st.fires.get(fp, ()) if x >= lo)
        if fires >= s.flap_min_fires and not self.index.too_old(st, t):
            return f"flapping: fired {fires} times within {fmt_delay(s.flap_window_s)}"
        return None

    def open(self, alert: Alert, fp: str, t: float) -> list[IncidentEvent]:
        """A new incident whose first alert is ``alert``."""
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
        self.book.states[iid] = st
        self.index.index(st)
        return self.join(st, alert, fp, t, "first alert of the incident", EventType.opened)

    def join(
        self, st: IncidentState, alert: Alert, fp: str, t: float, reason: str, etype: EventType
    ) -> list[IncidentEvent]:
        """The firing ``alert`` (series ``fp``, at ``t``) joins ``st`` because of ``reason``;
        ``etype`` is the event's type unless a more important change happens."""
        s = self.settings
        book = self.book
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
        inc.alert_count = members_in_all(st)
        count_alert(st, service, alert.name, 1, 1)
        book.journal.joined(inc.id, alert.id)
        prev_id = book.series.get(fp)
        if prev_id is not None and prev_id != inc.id:
            prev_st = book.states.get(prev_id)
            if prev_st is not None and fp in prev_st.firing:
                # the series moved to this incident: its old firing entry is superseded
                mark_resolved(prev_st, prev_st.firing.pop(fp), t)
                self.scheduler.schedule(prev_st)
        st.firing[fp] = idx
        st.fp_last[fp] = idx
        times = st.fires.get(fp)
        if times is None:
            # carry the series' recent fires over from the incident it last belonged to
            prev = book.states.get(book.series.get(fp, ""))
            st.fires[fp] = [*prev.fires.get(fp, ()), t] if prev is not None else [t]
        else:
            times.append(t)
            if len(times) > 2 * s.flap_min_fires:
                del times[: len(times) - s.flap_min_fires]
        book.series[fp] = inc.id
        if t > st.last_t:
            st.last_t = t
        if t < st.first_t:
            st.first_t = t
            inc.opened_at = alert.timestamp
        if t > st.last_change_t:
            st.last_change_t = t
        inc.updated_at = alert.timestamp
        details = [f"{service} {alert.name}: {reason}"]
        add_alert(st.common, service, alert.labels)
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
        gate = st.gate or self.gate.reached(st, t)
        if gate != st.gate:
            st.gate = gate
            if gate:
                inc.page = True
                if etype is EventType.updated:
                    etype = EventType.escalated
                details.append("paging gate reached")
        compact(st, book, s.max_members)
        self.scheduler.schedule(st)
        return [emit(st, etype, alert.timestamp, "; ".join(details))]

    def resolve(self, alert: Alert, fp: str, t: float) -> list[IncidentEvent]:
        """The resolved ``alert`` (series ``fp``, at ``t``) resolves the series' firing
        member; nothing happens when the series has none."""
        iid = self.book.series.get(fp)
        if iid is None:
            return []
        st = self.book.states[iid]
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
