"""The cross-domain merge stage: per-domain incident summaries in, ``incidents`` out.

Each per-domain correlator sees its own domain's alerts and the whole topology, so it makes
one correlator's decision for every alert except where the incident the alert would have
joined holds alerts of another domain. The merge stage keeps a *group* of per-domain incidents
per single-domain incident and unites groups the way the correlator would have ("mirror"
rules):

1. apply every summary of a batch (times, evidence, status) to its record and group;
2. for every service new to an incident (and every new alert series on a known service) find
   the indexed incidents related to it (:mod:`.links`); pairs within one partition are
   skipped unless one of the two groups spans partitions (that correlator decided them);
3. judge each pair time-symmetrically: the later of the two related alerts is the one that
   would have joined, so the other's *group* must have been joinable then
   (:func:`~.timing.group_joinable`); no group may span more than ``max_span_s``;
4. merge like ``Correlator``'s ``merge_shared``: the later alert opened its incident (closest
   match only), or both opened in one burst (``burst_merge_s``, ages counted per group), or
   they share a root cause (ranked over each group's union evidence); otherwise remember the
   link and merge once their roots come to share a cause;
5. lifecycle couplings: a recurrence that opened a new incident within ``reopen_window_s`` of
   its *group's* resolution reopens the group; another domain's series within
   ``burst_merge_s`` of a provisional reopen undoes that reopen (``split_reopened`` control);
   members younger than their group are told its start (``span_start`` control);
6. re-rank groups whose evidence grew (every change up to ``rerank_every_upto`` services, then
   on ``rerank_growth``), and publish: a per-domain incident not in a cross-domain group is
   forwarded as it is (its own id); a cross-domain group publishes one incident under the
   group id (the member opened first) with counts summed, the re-ranked root cause and an
   explanation "Merged across N correlation domains (...)"; an incident or group absorbed
   into another publishes a ``merged`` event with ``merged_into``.

The outcome of a batch does not depend on the order of its summaries.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.domain.correlate import CorrelationSettings
from pipeline.domain.correlate.settings import span_end
from pipeline.domain.event_view import EventLimits, counts_of
from pipeline.domain.explain import fmt_delay
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.merge.controls import Control, ControlKind
from pipeline.domain.merge.explain import add_reason, merge_reason
from pipeline.domain.merge.feedback import fan_out, live_members
from pipeline.domain.merge.incidents import Absorbed, absorbed_event, group_event, sum_counts
from pipeline.domain.merge.links import Link, LinkIndex, best_first
from pipeline.domain.merge.ranking import GroupRanker
from pipeline.domain.merge.state import (
    INF,
    Group,
    MergeState,
    Record,
    decode_state,
    encode_state,
)
from pipeline.domain.merge.summary import Summary
from pipeline.domain.merge.timing import group_joinable, join_end, record_due
from pipeline.domain.schemas import Feedback, Incident, IncidentEvent, ResponderRef, RunbookRef
from pipeline.domain.topology import Topology


@dataclass
class MergeOutput:
    """What one batch produced."""

    #: incident events to publish on ``incidents``, in order
    events: list[IncidentEvent] = field(default_factory=list)
    #: control messages for the per-domain correlators
    controls: list[Control] = field(default_factory=list)
    #: (absorbed group id, surviving group id) per union, in order (group membership)
    unions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Work:
    rec: Record
    new_services: list[str]
    relink: list[tuple[str, float]]
    root_changed: bool
    group_before: str


class Merger:
    """Cross-domain merge stage over one topology (see module docstring)."""

    def __init__(
        self,
        topology: Topology,
        settings: CorrelationSettings | None = None,
        limits: EventLimits | None = None,
        runbooks: Callable[[Incident], RunbookRef | None] | None = None,
        responders: Callable[[Incident], list[ResponderRef]] | None = None,
    ) -> None:
        self.settings = s = settings or CorrelationSettings()
        #: the runbook of an incident, set on every group's event (per-domain events carry
        #: their domain's choice already), as the annotate stage does
        self.runbooks = runbooks
        #: the recommended responders of an incident, set on every group's event likewise
        self.responders = responders
        self.limits = limits or EventLimits()
        self.graph = GraphIndex(topology, s.hops)
        self.index = LinkIndex(self.graph, s)
        self.state = MergeState()
        self.ranker = GroupRanker(self.graph, s, self.index.blast_radius)
        self._controls: list[Control] = []
        self._unions: list[Absorbed] = []

    # ------------------------------------------------------------------ public interface

    def on_batch(self, batch: list[Summary]) -> MergeOutput:
        """One batch of summaries (a ``take`` of ``incidents.domain``)."""
        order = sorted(
            batch,
            key=lambda sm: (
                sm.merged_into is None,
                min(sm.first_seen.values()) if sm.first_seen else sm.last_t,
                sm.id,
            ),
        )
        work: list[_Work] = []
        for sm in order:
            item = self._apply(sm)
            if item is not None:
                work.append(item)
        recs = self.state.records
        for w in work:
            if w.rec.id in recs:
                for svc in sorted(w.new_services, key=lambda x: (w.rec.first_seen[x], x)):
                    self._link_service(w.rec, svc, w.rec.first_seen[svc], repeat=False)
        for w in work:
            if w.rec.id in recs:
                for svc, t in w.relink:
                    self._link_service(w.rec, svc, t, repeat=True)
        for w in work:
            if w.rec.id in recs and (w.root_changed or self.state.find(w.rec.id) != w.group_before):
                self._recheck_links(w.rec.id)
        return self._output(batch, work)

    def advance(self, now: float) -> None:
        """Move the watermark to ``now`` (in production: the minimum over the input
        partitions of the event time each has reached, less ``allowed_lateness_s``): records
        no alert can join any more leave the indices, those past their reopen window are
        forgotten."""
        st = self.state
        if now > st.watermark:
            st.watermark = now
        heap = st.heap
        while heap and heap[0][0] <= st.watermark:
            popped, iid = heapq.heappop(heap)
            if st.scheduled.get(iid) != popped:
                continue  # superseded by an earlier entry
            del st.scheduled[iid]
            rec = st.records.get(iid)
            if rec is None:
                continue
            due = record_due(self.settings, rec, self._group(iid))
            if due is not None and due > st.watermark:
                self._schedule(iid, due)
                continue
            if rec.indexed:
                self.index.unindex(st, rec)
                due = record_due(self.settings, rec, self._group(iid))
                if due is not None and due > st.watermark:
                    self._schedule(iid, due)
                    continue
            if rec.status == "resolved" or rec.gone:
                self._forget(rec)

    def finish(self) -> MergeOutput:
        """End of input (offline): rank every group whose evidence grew since its last event
        and publish it."""
        out = MergeOutput()
        for gid in sorted(self.state.groups):
            grp = self.state.groups[gid]
            if grp.multi and (grp.pending or not grp.ranked):
                self.ranker.rerank(grp)
                if grp.published and grp.root != grp.published_root:
                    out.events.append(self._group_event(grp, False, []))
        return out

    def group_of(self, incident_id: str) -> str:
        """The id a per-domain incident is published under (itself unless in a group)."""
        grp = self.state.groups.get(self.state.find(incident_id))
        return grp.id if grp is not None and grp.multi else incident_id

    def members(self, group_id: str) -> list[tuple[str, str, int]]:
        """(per-domain incident id, domain, partition) of the live members of a group (or of
        the incident itself), for fanning out feedback."""
        return live_members(self.state, group_id)

    def fan_out(self, fb: Feedback) -> list[tuple[int, Feedback]]:
        """Feedback on a published id as (partition, feedback) per live member (see
        :func:`.feedback.fan_out`)."""
        return fan_out(self.state, fb)

    def snapshot(self) -> bytes:
        """The merge stage's state as msgpack (bounded: the live records and groups)."""
        return encode_state(self.state)

    def restore(self, data: bytes) -> None:
        """Carry on from a :meth:`snapshot` (ranking caches start empty: same results)."""
        self.state = decode_state(data)
        self.ranker.reset()

    def stats(self) -> dict[str, int]:
        """Sizes of the state (records, indexed, groups, index entries)."""
        st = self.state
        return {
            "records": len(st.records),
            "indexed": sum(1 for r in st.records.values() if r.indexed),
            "groups": len(st.groups),
            "index_entries": sum(len(v) for v in st.svc_index.values()),
        }

    def _schedule(self, iid: str, due: float) -> None:
        """Look at ``iid`` again no later than ``due`` (one live heap entry per record)."""
        st = self.state
        cur = st.scheduled.get(iid)
        if cur is None or due < cur:
            st.scheduled[iid] = due
            heapq.heappush(st.heap, (due, iid))

    # ------------------------------------------------------------------ groups

    def _group(self, iid: str) -> Group:
        st = self.state
        r = st.find(iid)
        grp = st.groups.get(r)
        if grp is None:
            rec = st.records[iid]
            grp = st.groups[r] = Group(
                id=r,
                members={r},
                first_t=rec.first_t,
                last_t=rec.last_t,
                partitions={rec.partition},
                domains={rec.domain},
            )
            if rec.status != "resolved":
                grp.unresolved.add(r)
            if rec.index_end is None:
                grp.matching.add(r)
            else:
                grp.matching_end = rec.index_end
        return grp

    def _union(self, a: str, b: str, why: str, keep: str | None = None) -> Group:
        """Unite the groups of ``a`` and ``b``; the survivor is the group opened first
        (ties: smaller id), or ``keep``'s group."""
        st = self.state
        ga, gb = self._group(a), self._group(b)
        if ga is gb:
            return ga
        if keep is not None:
            if st.find(keep) != ga.id:
                ga, gb = gb, ga
        elif (gb.first_t, gb.id) < (ga.first_t, ga.id):
            ga, gb = gb, ga
        brec = st.records.get(gb.id)
        self._unions.append(
            Absorbed(
                absorbed=gb.id,
                survivor=ga.id,
                why=why,
                published=gb.published or (brec is not None and brec.published),
                version=max(
                    gb.version,
                    brec.incident.version if brec is not None and brec.incident else 0,
                ),
                domain=brec.domain if brec is not None else "",
                opened_at=gb.first_t,
            )
        )
        st.parent[gb.id] = ga.id
        del st.groups[gb.id]
        self.ranker.forget(gb.id)
        ga.members |= gb.members
        ga.partitions |= gb.partitions
        ga.domains |= gb.domains
        ga.unresolved |= gb.unresolved
        ga.resolved_t = max(ga.resolved_t, gb.resolved_t)
        ga.matching |= gb.matching
        ga.matching_end = max(ga.matching_end, gb.matching_end)
        ga.first_t = min(ga.first_t, gb.first_t)
        ga.last_t = max(ga.last_t, gb.last_t)
        ga.version = max(ga.version, gb.version)
        for svc, kinds in gb.evidence.items():
            self._add_evidence(ga, svc, kinds, gb.first_seen[svc])
        for r in gb.reasons:
            add_reason(ga, r)
        ga.n_reasons += gb.n_reasons - len(gb.reasons)
        add_reason(ga, why)
        ga.retired_counts = sum_counts(ga.retired_counts, gb.retired_counts)
        ga.retired_alerts += gb.retired_alerts
        if not ga.ranked or gb.ranked:
            ga.ranked = False  # rank the union soon
        self._span_notify(ga)
        return ga

    @staticmethod
    def _add_evidence(grp: Group, svc: str, kinds: set[str], first_seen: float) -> None:
        cur = grp.evidence.get(svc)
        if cur is None:
            grp.evidence[svc] = set(kinds)
            grp.first_seen[svc] = first_seen
            grp.pending += 1
            return
        if not kinds <= cur:
            cur |= kinds
            grp.pending += 1
        if first_seen < grp.first_seen[svc]:
            grp.first_seen[svc] = first_seen

    def _span_notify(self, grp: Group) -> None:
        """Members younger than their group learn its start (``span_start`` control)."""
        st = self.state
        t0 = grp.first_t
        for m in sorted(grp.members):
            rec = st.records.get(m)
            if rec is None or rec.gone or rec.first_t <= t0:
                continue
            if st.span_sent.get(m, INF) > t0:
                st.span_sent[m] = t0
                self._controls.append(
                    Control(
                        kind=ControlKind.span_start,
                        incident=m,
                        domain=rec.domain,
                        partition=rec.partition,
                        t=t0,
                    )
                )

    def _set_status(self, rec: Record, status: str, resolved_t: float | None) -> None:
        rec.status = status
        rec.resolved_t = resolved_t
        grp = self._group(rec.id)
        if status == "resolved":
            grp.unresolved.discard(rec.id)
            grp.resolved_t = max(
                grp.resolved_t, resolved_t if resolved_t is not None else rec.last_t
            )
        else:
            grp.unresolved.add(rec.id)

    def _forget(self, rec: Record) -> None:
        st = self.state
        grp = self._group(rec.id)
        del st.records[rec.id]
        st.span_sent.pop(rec.id, None)
        st.scheduled.pop(rec.id, None)
        st.pending_split.pop(rec.id, None)
        for q in st.links.pop(rec.id, {}):
            other = st.links.get(q)
            if other is not None:
                other.pop(rec.id, None)
        if rec.incident is not None and not rec.gone:
            inc = rec.incident
            grp.retired_counts = sum_counts(grp.retired_counts, counts_of(inc))
            grp.retired_alerts += max(inc.alert_count, len(inc.alert_ids), len(inc.alerts))
        if all(m not in st.records for m in grp.members):
            del st.groups[grp.id]
            self.ranker.forget(grp.id)
            for m in grp.members:
                st.parent.pop(m, None)

    # ------------------------------------------------------------------ input

    def _apply(self, sm: Summary) -> _Work | None:
        st = self.state
        rec = st.records.get(sm.id)
        if sm.merged_into:
            if rec is not None:
                if sm.events:
                    rec.incident = sm.events[-1].incident
                self._absorbed_in_domain(rec, sm)
            return None
        if rec is None:
            if not sm.relevant:
                return None  # forgotten already: its events are forwarded as they are
            rec = st.records[sm.id] = Record(
                id=sm.id,
                domain=sm.domain,
                partition=sm.partition,
                status=sm.status,
                first_t=sm.first_t,
                last_t=sm.last_t,
            )
            root_changed = False
        else:
            root_changed = sm.relevant and sm.root != rec.root
        if sm.events:
            rec.incident = sm.events[-1].incident
        grp = self._group(sm.id)
        before = grp.id
        if not sm.relevant:
            return None
        if sm.rebuilt and rec.evidence:
            self._rebuild(rec, grp)
        rec.reopen_t = sm.reopen_t
        if rec.indexed and root_changed:
            self.index.unindex_root(st, rec)
        rec.first_t, rec.last_t = sm.first_t, max(rec.last_t, sm.last_t)
        rec.root, rec.n_alerts = sm.root, sm.n_alerts
        self._set_status(rec, sm.status, sm.resolved_t)
        rec.index_end = sm.index_end
        if sm.index_end is None:
            grp.matching.add(rec.id)
        else:
            grp.matching.discard(rec.id)
            grp.matching_end = max(grp.matching_end, sm.index_end)
        grp.first_t = min(grp.first_t, rec.first_t)
        grp.last_t = max(grp.last_t, rec.last_t)
        new_services: list[str] = []
        for svc, kinds in sm.evidence.items():
            ks = set(kinds)
            if svc not in rec.evidence:
                new_services.append(svc)
            rec.evidence[svc] = ks
            rec.first_seen[svc] = sm.first_seen[svc]
            self._add_evidence(grp, svc, ks, sm.first_seen[svc])
        if sm.fps:
            if rec.opener_fp is None:
                rec.opener_fp = sm.fps[0]
            rec.fps.update(sm.fps)
        relink = [
            (svc, t)
            for svc, t in sorted(sm.last_seen.items())
            if svc in rec.evidence and svc not in new_services
        ]
        if len(grp.members) == 1:
            grp.root = rec.root
        # indexed while an alert could still join it (resolved or not: its domain may have
        # resolved it within the step that brought its alerts)
        if join_end(self.settings, grp) > st.watermark:
            if not rec.indexed:
                self.index.index(st, rec)
            else:
                for svc in new_services:
                    self.index.index_service(st, rec, svc)
                if root_changed:
                    self.index.index_root(st, rec)
        due = record_due(self.settings, rec, grp)
        if due is not None:
            self._schedule(rec.id, due)
        if sm.split_from is not None:
            other = st.pending_split.pop(sm.split_from, None)
            if other is not None and other in st.records:
                self._union(
                    other,
                    rec.id,
                    f"{rec.id} (split off {sm.split_from}: a new burst, not a recurrence) "
                    f"merged with {other} across domains",
                )
        return _Work(rec, new_services, relink, root_changed, before)

    def _absorbed_in_domain(self, rec: Record, sm: Summary) -> None:
        """Its own domain's correlator merged ``rec`` into ``sm.merged_into``."""
        st = self.state
        assert sm.merged_into is not None
        self.index.unindex(st, rec)
        rec.gone = True
        self._set_status(rec, "resolved", sm.last_t)
        grp = self._group(rec.id)
        grp.matching.discard(rec.id)
        grp.matching_end = max(grp.matching_end, sm.last_t)
        if sm.merged_into not in st.records:  # the target's first summary comes later
            st.records[sm.merged_into] = Record(
                id=sm.merged_into,
                domain=sm.domain,
                partition=sm.partition,
                status="open",
                first_t=sm.first_t,
                last_t=sm.last_t,
            )
        # within one correlator its survivor's id goes on (its domain published the merge);
        # once a group spans domains, the group opened first keeps its id
        multi = self._group(sm.merged_into).multi or self._group(sm.id).multi
        self._union(
            sm.merged_into,
            sm.id,
            f"{sm.id} merged into {sm.merged_into} within {sm.domain}",
            keep=None if multi else sm.merged_into,
        )
        self._schedule(sm.id, st.watermark)

    def _rebuild(self, rec: Record, grp: Group) -> None:
        """A split took services away from ``rec``: start its evidence (and its group's
        union evidence) over."""
        st = self.state
        self.index.unindex(st, rec)
        rec.evidence, rec.first_seen = {}, {}
        grp.evidence, grp.first_seen = {}, {}
        self.ranker.forget(grp.id)
        for m in sorted(grp.members):
            r = st.records.get(m)
            if r is not None and r is not rec:
                for svc, ks in r.evidence.items():
                    self._add_evidence(grp, svc, ks, r.first_seen[svc])
        grp.pending += 1

    # ------------------------------------------------------------------ linking

    def _matches(self, rec: Record, x: str) -> list[Link]:
        """Indexed incidents of other groups related to service ``x`` of ``rec``, closest
        first; the undirected "path" relation only when nothing closer is found."""
        out = self._eligible(rec, self.index.related(self.state, x))
        if not out and self.settings.undirected_burst_s > 0:
            out = self._eligible(rec, self.index.near(self.state, x))
        return best_first(self.state, out)

    def _eligible(self, rec: Record, found: list[Link]) -> list[Link]:
        mine = self._group(rec.id)
        out: list[Link] = []
        for m in found:
            q = self.state.records[m[1]]
            if q is rec:
                continue
            gq = self._group(q.id)
            if gq is mine:
                continue
            if q.partition == rec.partition and not (mine.multi or gq.multi):
                continue  # one correlator decided this pair with the same information
            out.append(m)
        return out

    def _link_service(self, rec: Record, x: str, fx: float, repeat: bool) -> None:
        """The pairwise test for service ``x`` of ``rec`` (alerting there at ``fx``),
        symmetric in time: of the two related alerts the later one is the one that would
        have joined; the other one's group must have been joinable then. ``repeat``: ``x``
        was in ``rec`` already (a new series on it): like the correlator, it merges two
        incidents only when they are young or share a cause."""
        if x not in rec.evidence:
            return
        matches = self._matches(rec, x)
        s = self.settings
        st = self.state
        first_link = not repeat
        for _, qid, relation, via, fy in matches:
            if st.find(qid) == st.find(rec.id):
                continue
            q = st.records[qid]
            gp, gq = self._group(rec.id), self._group(qid)
            if fx >= fy:
                t, joiner, host, opener = fx, rec, gq, fx <= rec.first_t
            else:
                t, joiner, host, opener = fy, q, gp, fy <= q.first_t
            host_rec = q if joiner is rec else rec
            why = merge_reason(rec, x, q, relation, via, abs(fx - fy))
            if not group_joinable(s, host, t):
                if (
                    relation == "same"
                    and opener
                    and first_link
                    and host.multi
                    and self._reopens(host, joiner, t)
                ):
                    self._union(
                        qid,
                        rec.id,
                        why + f" (recurrence: reopens {host.id} within "
                        f"{fmt_delay(s.reopen_window_s)} of its resolution)",
                    )
                    first_link = False
                continue
            if (
                host_rec.reopen_t is not None
                and host_rec.partition != joiner.partition
                and 0 <= t - host_rec.reopen_t <= s.burst_merge_s
                and not repeat
            ):
                # in one domain this series would have undone the reopen (a new burst)
                if host_rec.id not in st.pending_split:
                    self._controls.append(
                        Control(
                            kind=ControlKind.split_reopened,
                            incident=host_rec.id,
                            domain=host_rec.domain,
                            partition=host_rec.partition,
                            t=t,
                        )
                    )
                    st.pending_split[host_rec.id] = joiner.id
                first_link = False
                continue
            if relation == "path" and t - host.first_t > s.undirected_burst_s:
                continue  # undirected relations only in the first moments of an incident
            if s.max_span_s > 0 and t > span_end(min(gp.first_t, gq.first_t), s.max_span_s):
                continue  # the single-domain incident would have been cut by max_span_s
            young = t - max(gp.first_t, gq.first_t) <= s.burst_merge_s
            if opener and first_link:
                self._union(qid, rec.id, why + f" ({joiner.id} opened with it)")
            elif young:
                self._union(qid, rec.id, why + " (same burst)")
            elif self.ranker.shares_cause(gp, gq):
                self._union(qid, rec.id, why + f" (shared root cause {gp.root})")
            else:
                st.links.setdefault(rec.id, {})[qid] = t
                st.links.setdefault(qid, {})[rec.id] = t
            first_link = False

    def _reopens(self, grp: Group, joiner: Record, t: float) -> bool:
        """Would the alert that opened ``joiner`` at ``t`` reopen the resolved single-domain
        incident ``grp``: the same series, within ``reopen_window_s`` of the group's
        resolution, whose latest incident in its domain before ``joiner`` is in ``grp``?"""
        fp = joiner.opener_fp
        if (
            fp is None
            or grp.unresolved
            or not grp.resolved_t <= t < grp.resolved_t + self.settings.reopen_window_s
        ):
            return False
        latest = max(
            (
                r
                for r in self.state.records.values()
                if r is not joiner
                and r.partition == joiner.partition
                and fp in r.fps
                and r.first_t <= t
            ),
            key=lambda r: (r.first_t, r.id),
            default=None,
        )
        return latest is not None and self.state.find(latest.id) == grp.id

    def _recheck_links(self, iid: str) -> None:
        """Remembered links of ``iid`` whose groups now share a root cause merge."""
        st = self.state
        for qid, t in sorted(st.links.get(iid, {}).items()):
            if qid not in st.records or st.find(qid) == st.find(iid):
                continue
            gp, gq = self._group(iid), self._group(qid)
            span = self.settings.max_span_s
            if span > 0 and t > span_end(min(gp.first_t, gq.first_t), span):
                continue
            if not (gp.unresolved and gq.unresolved):
                continue  # the correlator merges open incidents only
            self.ranker.maybe_rerank(gp)
            self.ranker.maybe_rerank(gq)
            if self.ranker.shares_cause(gp, gq):
                self._union(qid, iid, f"{iid} and {qid}: shared root cause {gp.root}")

    # ------------------------------------------------------------------ output

    def _group_event(self, grp: Group, merged: bool, events: list[IncidentEvent]) -> IncidentEvent:
        ev = group_event(self.state, grp, merged, events, self.limits)
        if self.runbooks is not None:
            ev.incident.runbook = self.runbooks(ev.incident)
        if self.responders is not None:
            ev.incident.responders = self.responders(ev.incident)
        return ev

    def _output(self, batch: list[Summary], work: list[_Work]) -> MergeOutput:
        """The batch's events in summary order: forwarded per-domain events, one event per
        changed cross-domain group (after the ``merged`` events of what it absorbed)."""
        st = self.state
        unions, self._unions = self._unions, []
        out = MergeOutput(
            controls=self._controls, unions=[(u.absorbed, u.survivor) for u in unions]
        )
        self._controls = []
        merged_groups = {st.find(u.survivor) for u in unions}
        absorbed: dict[str, list[IncidentEvent]] = {}
        for u in unions:
            gid = st.find(u.survivor)
            grp = st.groups.get(gid)
            if u.published and grp is not None and grp.multi:
                absorbed.setdefault(gid, []).append(absorbed_event(u, gid, st.watermark))
        grew = {st.find(w.rec.id) for w in work if w.rec.id in st.records} | merged_groups
        events_of: dict[str, list[IncidentEvent]] = {}
        for sm in batch:
            events_of.setdefault(st.find(sm.id), []).extend(sm.events)
        done: set[str] = set()
        for sm in batch:
            gid = st.find(sm.id)
            grp = st.groups.get(gid)
            if grp is None or not grp.multi:
                rec = st.records.get(sm.id)
                if rec is not None and sm.events:
                    rec.published = True
                out.events.extend(sm.events)
                continue
            if gid in done:
                continue
            done.add(gid)
            out.events.extend(absorbed.pop(gid, []))
            if gid in grew:
                self.ranker.maybe_rerank(grp, force=not grp.ranked)
            out.events.append(self._group_event(grp, gid in merged_groups, events_of[gid]))
        for gid, evs in absorbed.items():
            out.events.extend(evs)
            grp = st.groups[gid]
            if gid not in done:
                self.ranker.maybe_rerank(grp, force=not grp.ranked)
                out.events.append(self._group_event(grp, True, []))
        return out
