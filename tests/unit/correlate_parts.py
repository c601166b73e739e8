"""Hand-built correlator states for the unit tests of the correlator's parts.

``new_state`` and ``add_member`` set the fields the parts read (members, alerts, firing,
evidence, ...) directly, without going through the correlator, so a part's test depends on
that part alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.domain.correlate.feedback import FeedbackApplier
from pipeline.domain.correlate.lifecycle import Lifecycle
from pipeline.domain.correlate.membership import Membership
from pipeline.domain.correlate.merging import Merger
from pipeline.domain.correlate.paging import PagingGate
from pipeline.domain.correlate.ranking import Ranker
from pipeline.domain.correlate.relate import JoinIndex
from pipeline.domain.correlate.schedule import Scheduler
from pipeline.domain.correlate.settings import CorrelationSettings
from pipeline.domain.correlate.state import (
    Book,
    IncidentState,
    Member,
    count_alert,
    members_in_all,
)
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.schemas import (
    SEVERITY_RANK,
    Alert,
    AlertRef,
    AlertStatus,
    Incident,
    IncidentStatus,
    Severity,
)
from tests.unit.test_correlate import T0, TOPO


def at(dt: float) -> datetime:
    """``T0 + dt`` as a datetime."""
    return datetime.fromtimestamp(T0 + dt, UTC)


def new_state(
    iid: str, dt: float = 0.0, status: IncidentStatus = IncidentStatus.open
) -> IncidentState:
    """An incident without members, opened at ``T0 + dt``."""
    inc = Incident(id=iid, status=status, opened_at=at(dt), updated_at=at(dt), page=False)
    t = T0 + dt
    return IncidentState(inc=inc, first_t=t, last_t=t, last_change_t=t)


def add_member(
    st: IncidentState,
    service: str,
    dt: float,
    *,
    sev: str = "critical",
    kind: str = "error",
    fp: str | None = None,
    resolved_dt: float | None = None,
    labels: tuple[str, ...] = (),
) -> Member:
    """Append a member alert at ``T0 + dt`` (resolved at ``T0 + resolved_dt`` if given)."""
    t = T0 + dt
    fp = fp or f"fp-{service}-{kind}"
    idx = len(st.members)
    rt = None if resolved_dt is None else T0 + resolved_dt
    m = Member(fp, service, kind, SEVERITY_RANK[Severity(sev)], t, len(st.inc.alerts), rt)
    st.members.append(m)
    aid = f"{st.inc.id}-a{idx}"
    st.inc.alerts.append(
        AlertRef(
            id=aid,
            service=service,
            name=f"{kind}-alert",
            severity=Severity(sev),
            status=AlertStatus.firing if rt is None else AlertStatus.resolved,
            timestamp=at(dt),
        )
    )
    st.inc.alert_ids.append(aid)
    count_alert(st, service, f"{kind}-alert", 1, int(rt is None))
    st.inc.alert_count = members_in_all(st)
    st.fp_last[fp] = idx
    if rt is None:
        st.firing[fp] = idx
    else:
        st.firing.pop(fp, None)
    st.fires.setdefault(fp, []).append(t)
    kinds = st.evidence.setdefault(service, [])
    if kind not in kinds:
        kinds.append(kind)
        kinds.sort()
    if service not in st.first_seen or t < st.first_seen[service]:
        st.first_seen[service] = t
    st.inc.services = sorted(st.evidence)
    if SEVERITY_RANK[Severity(sev)] > SEVERITY_RANK[st.inc.severity]:
        st.inc.severity = Severity(sev)
    for kv in labels:
        if kv not in st.labels:
            st.labels.append(kv)
    st.first_t = min(st.first_t, t)
    st.last_t = max(st.last_t, t)
    st.last_change_t = max(st.last_change_t, t, rt or t)
    return m


def make_alert(
    service: str,
    dt: float,
    *,
    name: str = "ErrorRateHigh",
    sev: str = "critical",
    status: str = "firing",
    labels: dict[str, str] | None = None,
    aid: str | None = None,
) -> Alert:
    """A canonical alert at ``T0 + dt``."""
    return Alert(
        id=aid or f"{service}-{name}-{dt}-{status}",
        source="test",
        service=service,
        name=name,
        severity=Severity(sev),
        status=AlertStatus(status),
        timestamp=at(dt),
        labels=labels or {},
    )


class Parts:
    """The correlator's parts wired together the way the correlator wires them."""

    def __init__(self, **settings: Any) -> None:
        s = self.settings = CorrelationSettings(**settings)
        self.graph = GraphIndex(TOPO, s.hops)
        self.book = Book()
        self.index = JoinIndex(self.graph, s, self.book.states)
        self.ranker = Ranker(self.graph, s)
        self.gate = PagingGate(s)
        self.scheduler = Scheduler(s)
        self.members = Membership(
            TOPO, s, self.book, self.index, self.ranker, self.gate, self.scheduler
        )
        self.lifecycle = Lifecycle(s, self.book, self.index, self.ranker, self.gate, self.scheduler)
        self.merger = Merger(
            s, self.graph, self.book, self.index, self.ranker, self.gate, self.scheduler
        )
        self.feedback = FeedbackApplier(
            self.book, self.index, self.ranker, self.scheduler, self.merger
        )

    def track(self, st: IncidentState) -> IncidentState:
        """Put a hand-built incident in the book, the indices (if open) and the schedule."""
        self.book.states[st.inc.id] = st
        for fp in st.fp_last:
            self.book.series[fp] = st.inc.id
        st.indexed = False
        if st.inc.status is not IncidentStatus.resolved:
            self.index.index(st)
        self.ranker.rerank(st)
        self.scheduler.schedule(st)
        return st
