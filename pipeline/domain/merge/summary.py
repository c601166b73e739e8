"""What a per-domain worker tells the merge stage: one :class:`Summary` per changed incident
per step, derived from its :class:`~pipeline.domain.pipeline.AlertPipeline`'s step output.

A summary carries the incident's events of the step (the merge stage is the only writer of
``incidents``: it forwards them, or folds them into a cross-domain group's event) and, when
something the merge stage uses changed, the merge-relevant *delta*: services whose alert
kinds changed (with their first-seen times), new alert series (fingerprints, the opener's
first), alert series new on services already sent (``last_seen``), root cause, status,
resolution, ``index_end`` (when its correlator stopped matching alerts to it), ``reopen_t``,
in-domain ``merged_into``, ``split_from``, or the newest alert time moved on by
``last_t_step_s``. ``relevant`` is False when only the events are new.

The deriver's memory of what it sent is not checkpointed: after a restart the first summary of
each incident carries its whole evidence again, which the merge stage takes as known (only
services it had not seen count as new).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from pipeline.domain.correlate.state import IncidentState
from pipeline.domain.pipeline import AlertPipeline
from pipeline.domain.rootcause import KindClassifier
from pipeline.domain.schemas import Incident, IncidentEvent


class Summary(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One step's change of one per-domain incident (evidence as a delta)."""

    id: str
    domain: str
    #: by-domain partition whose correlator owns the incident (pairs within one partition
    #: were decided by that correlator)
    partition: int
    status: str  # open | acknowledged | resolved
    first_t: float
    last_t: float
    #: the incident's events of the step, in order (to forward or fold into its group's)
    events: list[IncidentEvent] = []
    #: something below changed (else only ``events`` are new)
    relevant: bool = True
    #: services whose kinds changed -> all their kinds now
    evidence: dict[str, list[str]] = {}
    #: the same services -> first alert time in the incident
    first_seen: dict[str, float] = {}
    root: str | None = None
    n_alerts: int = 0
    resolved_t: float | None = None
    merged_into: str | None = None
    #: services already sent with an alert series new to the incident -> its first time
    last_seen: dict[str, float] = {}
    #: alert series new in the incident; on its first summary the opener's comes first
    fps: list[str] = []
    #: when its correlator stopped matching alerts to it (None: it still does)
    index_end: float | None = None
    #: reopened then, provisionally (a burst may undo it)
    reopen_t: float | None = None
    #: split off that incident (a reopen undone)
    split_from: str | None = None
    #: ``evidence`` is complete, not a delta (services were taken away by a split)
    rebuilt: bool = False


@dataclass
class _Sent:
    """What was last sent of one incident."""

    evidence: dict[str, frozenset[str]]
    root: str | None
    status: str
    last_t: float
    index_end: float | None
    reopen_t: float | None
    fps: set[str] = field(default_factory=set)
    scanned: int = 0  # members scanned for new series
    seen_fps: set[str] = field(default_factory=set)


class SummaryDeriver:
    """Derives one partition's summaries step by step (the per-domain worker's side).

    State: what was last sent per tracked incident, dropped once its correlator forgot it.
    """

    def __init__(self, partition: int, last_t_step_s: float = 30.0) -> None:
        self.partition = partition
        self.last_t_step_s = last_t_step_s
        self._sent: dict[str, _Sent] = {}
        self._kind: KindClassifier | None = None

    def derive(self, pipe: AlertPipeline, events: Iterable[IncidentEvent]) -> list[Summary]:
        """Summaries of the incidents ``events`` (one step's output of ``pipe``) are about,
        in order of their first event."""
        by_id: dict[str, list[IncidentEvent]] = {}
        for ev in events:
            by_id.setdefault(ev.incident.id, []).append(ev)
        out = [self._summary(pipe, evs[-1].incident, evs) for evs in by_id.values()]
        self._forget_untracked(pipe, set(by_id))
        return out

    def _forget_untracked(self, pipe: AlertPipeline, now_sent: set[str]) -> None:
        states = pipe.correlator.book.states
        for iid in [i for i in self._sent if i not in states and i not in now_sent]:
            del self._sent[iid]

    def _summary(self, pipe: AlertPipeline, inc: Incident, events: list[IncidentEvent]) -> Summary:
        corr = pipe.correlator
        st = corr.book.states.get(inc.id)
        base = Summary(
            id=inc.id,
            domain=inc.domain,
            partition=self.partition,
            status=inc.status.value,
            first_t=0.0,
            last_t=0.0,
            events=events,
        )
        if inc.merged_into:
            self._sent.pop(inc.id, None)
            t = inc.updated_at.timestamp()
            return msgspec.structs.replace(base, first_t=t, last_t=t, merged_into=inc.merged_into)
        if st is not None:
            evidence = {s: frozenset(k) for s, k in st.evidence.items()}
            first_seen = st.first_seen
            first_t, last_t = st.first_t, st.last_t
        else:
            evidence, first_seen, first_t, last_t = self._from_incident(pipe, inc)
        s = corr.settings
        if st is not None and st.indexed:
            index_end: float | None = None
        elif st is not None and inc.id in corr.index.unindexed_at:
            index_end = corr.index.unindexed_at[inc.id]
        else:  # evicted (or restored): it stopped matching at its join end or resolution
            index_end = last_t + s.join_gap_s + s.allowed_lateness_s
            if inc.resolved_at is not None:
                index_end = min(index_end, inc.resolved_at.timestamp())
        reopen_t = st.reopen_t if st is not None else None
        status = inc.status.value
        prev = self._sent.get(inc.id)
        rebuilt = prev is not None and any(svc not in evidence for svc in prev.evidence)
        if prev is None or rebuilt:
            prev = _Sent({}, None, "", float("-inf"), None, None)
            prev_index_end: object = "unset"
        else:
            prev_index_end = prev.index_end
        delta = {svc: sorted(k) for svc, k in evidence.items() if prev.evidence.get(svc) != k}
        relink = self._new_series(st, prev, delta) if st is not None else {}
        new_fps = self._new_fps(st, prev) if st is not None else []
        relevant = bool(
            delta
            or relink
            or new_fps
            or inc.root_cause != prev.root
            or status != prev.status
            or last_t - prev.last_t >= self.last_t_step_s
            or index_end != prev_index_end
            or reopen_t != prev.reopen_t
        )
        if not relevant:
            return msgspec.structs.replace(base, first_t=first_t, last_t=last_t, relevant=False)
        prev.evidence, prev.root, prev.status, prev.last_t = (
            evidence,
            inc.root_cause,
            status,
            last_t,
        )
        prev.index_end, prev.reopen_t = index_end, reopen_t
        if st is not None:
            self._sent[inc.id] = prev
        else:
            self._sent.pop(inc.id, None)
        return msgspec.structs.replace(
            base,
            first_t=first_t,
            last_t=last_t,
            evidence=delta,
            first_seen={svc: first_seen[svc] for svc in delta},
            root=inc.root_cause,
            n_alerts=inc.alert_count,
            resolved_t=inc.resolved_at.timestamp() if inc.resolved_at else None,
            last_seen=relink,
            fps=new_fps,
            index_end=index_end,
            reopen_t=reopen_t,
            split_from=st.split_from if st is not None else None,
            rebuilt=rebuilt,
        )

    @staticmethod
    def _new_series(
        st: IncidentState, prev: _Sent, delta: dict[str, list[str]]
    ) -> dict[str, float]:
        """Alert series new to the incident on services already sent: the correlator matched
        their first alert against every related incident (a repeat of a firing series, a
        flap or a reopen did not go through matching, so they do not count)."""
        if prev.scanned > len(st.members):  # a split took members away: rescan
            prev.scanned, prev.seen_fps = 0, set()
        relink: dict[str, float] = {}
        for m in st.members[prev.scanned :]:
            if m.fp in prev.seen_fps:
                continue
            prev.seen_fps.add(m.fp)
            if m.service in prev.evidence and m.service not in delta:
                relink[m.service] = min(relink.get(m.service, m.t), m.t)
        prev.scanned = len(st.members)
        return relink

    @staticmethod
    def _new_fps(st: IncidentState, prev: _Sent) -> list[str]:
        """Series not sent yet; on the first summary the opener's (earliest member) first."""
        out: list[str] = []
        if not prev.fps and st.members:
            first = min(st.members, key=lambda m: m.t).fp
            out.append(first)
            prev.fps.add(first)
        for fp in st.fp_last:
            if fp not in prev.fps:
                out.append(fp)
                prev.fps.add(fp)
        return out

    def _from_incident(
        self, pipe: AlertPipeline, inc: Incident
    ) -> tuple[dict[str, frozenset[str]], dict[str, float], float, float]:
        """Evidence and times of an incident its correlator already forgot (evicted within
        the step), from the members the incident lists."""
        if self._kind is None:
            self._kind = KindClassifier(pipe.correlator.settings.kind_patterns)
        evidence: dict[str, frozenset[str]] = {}
        first_seen: dict[str, float] = {}
        for ref in inc.alerts:
            t = ref.timestamp.timestamp()
            evidence[ref.service] = evidence.get(ref.service, frozenset()) | {self._kind(ref.name)}
            first_seen[ref.service] = min(first_seen.get(ref.service, t), t)
        first_t = min(first_seen.values()) if first_seen else inc.opened_at.timestamp()
        last_t = max(first_seen.values()) if first_seen else first_t
        return evidence, first_seen, first_t, last_t
