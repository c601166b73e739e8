"""The correlator: routes each alert, clock tick and piece of feedback to the parts.

A firing alert whose series is still firing in an open incident rejoins it, as does a
flapping one; a recurrence of a member of a recently resolved incident reopens it, unless it
relates to an open incident. Otherwise it joins the closest related open incident (first
undoing that incident's reopen if the alert shows the reopen began a new burst), merging the
other related incidents when they share the cause, or opens a new incident.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.domain.call_edges import call_edge
from pipeline.domain.cooccurrence import CoOccurrence
from pipeline.domain.correlate.controls import apply_span_start, apply_split_reopened
from pipeline.domain.correlate.feedback import FeedbackApplier
from pipeline.domain.correlate.journal import MembershipOp
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
    decode_snapshot,
    encode_snapshot,
    upgrade,
)
from pipeline.domain.fingerprint import fingerprint
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.schemas import (
    Alert,
    AlertStatus,
    EventType,
    Feedback,
    Incident,
    IncidentEvent,
    IncidentStatus,
)
from pipeline.domain.topology import Topology

#: the origin of the calls learned from the incident history (learned-edges mode)
HISTORY_ORIGIN = "incident history"


def _history(confidence: float) -> str:
    return f"{HISTORY_ORIGIN} at confidence {confidence:.2f}"


class Correlator:
    """Streaming correlator over one topology: pure, deterministic, event-time driven."""

    def __init__(self, topology: Topology, settings: CorrelationSettings | None = None) -> None:
        self.topology = topology
        self.settings = s = settings or CorrelationSettings()
        self.graph = GraphIndex(topology, s.hops)
        self.book = Book()
        self.cooc = CoOccurrence(s.cooccurrence) if s.learn_cooccurrence else None
        self.index = JoinIndex(self.graph, s, self.book.states, self.cooc)
        self.ranker = Ranker(self.graph, s, self.cooc)
        self.gate = PagingGate(s)
        self.scheduler = Scheduler(s)
        parts = (self.book, self.index, self.ranker, self.gate, self.scheduler)
        self.members = Membership(topology, s, *parts)
        self.lifecycle = Lifecycle(s, *parts)
        self.merger = Merger(s, self.graph, *parts)
        self.feedback = FeedbackApplier(
            self.book, self.index, self.ranker, self.scheduler, self.merger
        )
        self._states = self.book.states  # (tests look at the states through it)
        self._watermark = float("-inf")

    # ------------------------------------------------------------------ public interface

    def process(self, alert: Alert) -> list[IncidentEvent]:
        """One deduplicated alert event; returns the incident events it caused."""
        t = alert.epoch
        if t > self._watermark:
            self._watermark = self.index.now = t
        fp = fingerprint(alert)
        if alert.status is AlertStatus.resolved:
            return self.members.resolve(alert, fp, t)
        if self.settings.learn_calls and alert.labels:
            edge = call_edge(alert.service, alert.labels)
            if edge is not None:
                self.learn_call(*edge)
        if self.cooc is not None:
            self.cooc.observe(alert.service, t)
        return self._on_firing(alert, fp, t)

    def learn_call(self, caller: str, callee: str, origin: str | None = None) -> bool:
        """Add a call the topology misses (named by an alert's labels, see
        :mod:`pipeline.domain.call_edges`, or learned from ``origin``) to the graph this
        correlator relates and ranks with; at most ``max_learned_calls``. Returns whether
        the graph changed."""
        g = self.graph
        full = len(g.learned) >= self.settings.max_learned_calls
        if full or not g.add_edge(caller, callee, origin):
            return False
        self.index.add_dependency(caller, callee)
        self.ranker.graph_changed()
        return True

    def learn_relations(self, relations: Iterable[tuple[str, str, float]]) -> int:
        """Extra ``(caller, callee, confidence)`` calls learned from the incident history
        (the insights' suggested missing edges, :mod:`pipeline.domain.insights.learned`),
        treated as learned calls; returns how many were new to the graph."""
        return sum(self.learn_call(a, b, _history(c)) for a, b, c in relations)

    def unlearn_call(self, caller: str, callee: str) -> bool:
        """Forget a learned call (topology edges stay); returns whether the graph changed.
        Incidents open now keep what they were related through; new alerts are related
        without it."""
        if not self.graph.remove_edge(caller, callee):
            return False
        self.ranker.graph_changed()
        return True

    def sync_relations(self, relations: Iterable[tuple[str, str, float]]) -> tuple[int, int]:
        """Make the calls learned from the incident history exactly ``relations``: new ones
        are learned (:meth:`learn_relations`), and those learned before but no longer among
        them (the evidence stopped supporting them at the confidence that added them) are
        forgotten. Calls learned from alert labels stay. Returns (added, removed)."""
        want = {(a, b): c for a, b, c in relations}
        had = [e for e, o in self.graph.origins.items() if o.startswith(HISTORY_ORIGIN)]
        removed = sum(self.unlearn_call(*e) for e in had if e not in want)
        added = self.learn_relations((a, b, c) for (a, b), c in want.items())
        return added, removed

    def advance(self, now: float) -> list[IncidentEvent]:
        """Clock tick: resolve quiet incidents, close joins that can no longer happen, evict."""
        if now > self._watermark:
            self._watermark = self.index.now = now
        return self.lifecycle.advance(now)

    def apply_feedback(self, fb: Feedback) -> list[IncidentEvent]:
        """A responder's feedback on an incident; returns the incident events it caused."""
        return self.feedback.apply(fb)

    def set_span_start(self, incident_id: str, t: float) -> bool:
        """Merge-stage control: the incident's cross-domain group began at ``t`` (see
        :mod:`.controls`); returns whether it changed anything."""
        return apply_span_start(self.book, self.scheduler, incident_id, t)

    def split_reopened(self, incident_id: str, t: float) -> list[IncidentEvent]:
        """Merge-stage control: undo the incident's provisional reopen, a related series of
        another domain alerted at ``t`` (see :mod:`.controls`); returns the events."""
        return apply_split_reopened(self.book, self.lifecycle, self.settings, incident_id, t)

    def incidents(self) -> list[Incident]:
        """Every tracked incident (open, and resolved within their reopen window)."""
        return [st.inc for st in self.book.states.values()]

    def get(self, incident_id: str) -> Incident | None:
        st = self.book.states.get(incident_id)
        return st.inc if st is not None else None

    def take_membership(self) -> list[MembershipOp]:
        """Membership changes since the last call, in order (see :mod:`.journal`)."""
        return self.book.journal.take()

    def snapshot(self) -> bytes:
        """A msgpack checkpoint of every tracked incident, the learned calls (with where
        they were learned from) and the co-occurrence learner (see :meth:`restore`)."""
        cooc = self.cooc.to_bytes() if self.cooc is not None else b""
        origins = [(a, b, o) for (a, b), o in self.graph.origins.items()]
        return encode_snapshot(
            self._watermark, list(self.book.states.values()), self.graph.learned, cooc, origins
        )

    @classmethod
    def restore(
        cls, topology: Topology, settings: CorrelationSettings | None, data: bytes
    ) -> Correlator:
        """A correlator carrying on from a :meth:`snapshot`."""
        snap = decode_snapshot(data)
        c = cls(topology, settings)
        c._watermark = c.index.now = snap.watermark
        origins = {(a, b): o for a, b, o in snap.learned_origins}
        for caller, callee in snap.learned_edges:
            c.graph.add_edge(caller, callee, origins.get((caller, callee)))
        if c.cooc is not None and snap.cooccurrence:
            c.cooc = CoOccurrence.from_bytes(snap.cooccurrence, c.settings.cooccurrence)
            c.index.cooc = c.ranker.cooc = c.cooc
        for st in snap.states:
            upgrade(st)
            c.book.states[st.inc.id] = st
            for fp in st.fp_last:
                c.book.series[fp] = st.inc.id
            if st.indexed:
                st.indexed = False
                c.index.index(st)
            c.scheduler.schedule(st)
        return c

    # ------------------------------------------------------------------ a firing alert

    def _on_firing(self, alert: Alert, fp: str, t: float) -> list[IncidentEvent]:
        members = self.members
        iid = self.book.series.get(fp)
        if iid is not None:
            st = self.book.states[iid]
            if st.inc.status is not IncidentStatus.resolved:
                if fp in st.firing:
                    reason = "repeat notification of a firing alert"
                    return members.join(st, alert, fp, t, reason, EventType.updated)
                flapping = members.flap_reason(st, fp, t)
                if flapping is not None:
                    return members.join(st, alert, fp, t, flapping, EventType.updated)
            elif self.lifecycle.can_reopen(st, t) and not self.index.matches(
                alert, alert.service, t
            ):
                # (an alert that relates to an open incident joins it instead: the ongoing
                # problem explains it better than a recurrence of a finished one)
                reason = self.lifecycle.reopen(st, t)
                return members.join(st, alert, fp, t, reason, EventType.reopened)
        service = alert.service
        matches = self.index.matches(alert, service, t)
        if not matches:
            return members.open(alert, fp, t)
        self.index.sort_best_first(matches)
        st = self.book.states[matches[0][1]]
        split: list[IncidentEvent] = []
        split_detail = ""
        if self.lifecycle.is_new_burst(st, fp, t):
            # a series the incident never had joins right after a recurrence reopened it: the
            # recurrence was the first alert of a new burst, not the old problem coming back
            split_ev, split_detail, st = self.lifecycle.split_reopened(st, alert.timestamp)
            split = [split_ev]
        reason = self.index.reason(matches[0], service, t - st.first_t)
        events = members.join(st, alert, fp, t, reason, EventType.updated)
        if split:
            events[0].type = EventType.opened
            events[0].detail = split_detail + "; " + events[0].detail
            events = [*split, *events]
        if self.settings.merge and len(matches) > 1:
            others = [m[1] for m in matches[1:]]
            events.extend(self.merger.merge_shared(st, others, alert.timestamp))
        return events

    def _gate(self, st: IncidentState, t: float) -> bool:
        """The paging gate at ``t`` (tests compare it with a full recount)."""
        return self.gate.reached(st, t)
