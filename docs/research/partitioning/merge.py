"""The cross-domain merge stage: a prototype.

Input: one *incident summary* per merge-relevant change of a per-domain incident (what the
per-domain worker would publish on an internal topic, see ``run.SummaryEmitter``): id,
domain, status, first/last alert time, the evidence added since the previous summary
(service -> alert kinds, first-seen time), root cause and candidates, ``merged_into`` when the
domain's own correlator absorbed it. Output: *groups* of per-domain incidents that a
single-domain correlator would have made one incident, each with a root cause re-ranked over
the union evidence and an explanation saying which incidents were merged across which
domains and why; plus control messages back to the domains (``span_updates``).

Why this test is right on any topology (FINDINGS.md): a per-domain correlator sees every
alert of its domain and the *whole* topology, so it makes the single-domain decision for
every alert except where the incident the alert would have joined holds alerts of another
domain. A group of per-domain incidents is the merge stage's picture of one single-domain
incident (its services = the union, its time span = the union). When service ``x`` first shows
in incident P at ``f``, the stage applies the correlator's own join test to every other
group G: is ``x`` related to a service of G (same service, dependency path within ``hops``
either way, shared direct dependency, ``x`` in the blast radius of a member's root, an
undirected path within ``hops`` during the first ``undirected_burst_s``), and is G joinable
when the later of the two related alerts came (``t``: G's newest alert within
``join_gap_s``, G not older than ``max_span_s``, G not resolved)? Pairs inside one domain are
skipped unless a group involved spans several domains (otherwise the domain already decided
with the same information). A related, joinable pair is merged the way the correlator merges
when one alert matches two incidents (``Correlator._merge_shared``):

* the later alert opened its incident (in one domain it would have joined G instead of
  opening a fragment) -> merge, with the closest G only;
* the younger of the two opened at most ``burst_merge_s`` before ``t`` (one burst) -> merge;
* they share a cause (same root, or one root in the other's blast radius, each root ranked
  over its group's union evidence) -> merge; otherwise the link is remembered and merged
  later if their roots come to share a cause.

No merge makes a group span more than ``max_span_s``; members learn their group's start
(``span_updates``) so a domain stops growing an incident when the single-domain incident
would have been cut, and judges its age in a burst by the group's age.

Lifecycle couplings mirrored (each found by diffing against the single-domain grouping):

* joinable means the *group* is: its newest alert within ``join_gap_s``, not older than
  ``max_span_s``, not resolved, and at least one member still matched by its own correlator
  (``index_end``: a correlator stops matching alerts to a quiet incident for good, even if a
  flapping alert later rejoins it);
* a recurrence that opened a new incident in its domain within ``reopen_window_s`` of the
  *group's* resolution reopens the group (same alert series, via fingerprints);
* a series of another domain relating to an incident its domain reopened less than
  ``burst_merge_s`` ago undoes the reopen (``split_requests`` control: the domain splits the
  recurrence off as a new incident, which then joins that series' incident);
* new alert series on services already in an incident are linked like new services (the
  correlator matched them); repeats of a firing series are not (it did not).

Mode ``hybrid``: the domains also see *ghosts* of other domains' incidents (``ghost.py``) and
declare cross-domain unions at alert level; this stage then only judges pairs whose two
alerts arrived in the same batch (no ghost existed yet) and applies the declarations.

State (bounded by the incidents alerts can still relate to, like the correlator's): per live
per-domain incident its services (kinds, first-seen) and times; a service index, a direct-
dependency index and a root index of the joinable ones; union-find parents; per group the
union evidence, times, a rank cache and a few merge reasons; remembered links. An incident
leaves the indices when the watermark passes its group's join end and is forgotten
``reopen_window_s`` after it resolved.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from pipeline.domain.correlate import CorrelationSettings
from pipeline.domain.explain import fmt_delay
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.rootcause import DEFAULT_LLR, RankCache, Ranked, rank
from pipeline.domain.topology import Topology

INF = float("inf")


@dataclass
class Summary:
    """One merge-relevant change of a per-domain incident (a delta: only new evidence)."""

    id: str
    domain: str
    status: str  # open | acknowledged | resolved
    first_t: float
    last_t: float
    evidence: dict[str, list[str]]  # services whose kinds changed -> all their kinds now
    first_seen: dict[str, float]  # the same services -> first alert time in the incident
    root: str | None
    candidates: list[tuple[str, float]]
    n_alerts: int = 0
    resolved_t: float | None = None
    merged_into: str | None = None
    #: services already in the incident whose newest alert moved on -> its time
    last_seen: dict[str, float] = field(default_factory=dict)
    #: alert series (fingerprints) new in the incident; the first is its opener's on the
    #: incident's first summary
    fps: list[str] = field(default_factory=list)
    #: when its correlator stopped matching alerts to it (None: it still does)
    index_end: float | None = None
    reopen_t: float | None = None  # reopened then, provisionally (a burst may undo it)
    split_from: str | None = None  # split off that incident (a reopen undone)
    rebuilt: bool = False  # evidence is complete, not a delta (services were taken away)


@dataclass
class _Rec:
    id: str
    domain: str
    status: str
    first_t: float
    last_t: float
    evidence: dict[str, set[str]] = field(default_factory=dict)
    first_seen: dict[str, float] = field(default_factory=dict)
    root: str | None = None
    candidates: list[tuple[str, float]] = field(default_factory=list)
    n_alerts: int = 0
    resolved_t: float | None = None
    indexed: bool = False
    gone: bool = False  # absorbed by its own domain's correlator
    fps: set[str] = field(default_factory=set)
    opener_fp: str | None = None
    index_end: float | None = None
    reopen_t: float | None = None
    learned: dict[str, int] = field(default_factory=dict)  # service -> batch it came in


@dataclass
class Group:
    id: str  # the member opened first (smallest first_t, then id)
    members: set[str]
    first_t: float
    last_t: float
    domains: set[str] = field(default_factory=set)
    unresolved: set[str] = field(default_factory=set)
    resolved_t: float = -INF
    matching: set[str] = field(default_factory=set)  # members their domain still matches to
    matching_end: float = -INF  # latest time a member stopped being matched to
    evidence: dict[str, set[str]] = field(default_factory=dict)
    first_seen: dict[str, float] = field(default_factory=dict)
    root: str | None = None
    candidates: list[tuple[str, float]] = field(default_factory=list)
    ranked: bool = False  # ranked over the union evidence at least once
    pending: int = 0
    reasons: list[str] = field(default_factory=list)
    n_reasons: int = 0
    cache: RankCache = field(default_factory=RankCache)


@dataclass
class GroupEvent:
    type: str  # merged | root_cause_changed | updated
    group: str
    members: list[str]
    root: str | None
    detail: str


class Merger:
    """Cross-domain merge stage (see module docstring). ``mode``: ``mirror`` (the rules
    above), ``naive`` (merge every related, joinable pair), ``none``."""

    MAX_REASONS = 8

    def __init__(
        self,
        topology: Topology,
        settings: CorrelationSettings | None = None,
        mode: str = "mirror",
    ) -> None:
        self.s = settings or CorrelationSettings()
        self.g = GraphIndex(topology, self.s.hops)
        self.topology = topology
        self.mode = mode
        #: variants measured in FINDINGS.md
        self.young_rule = True
        self.use_index_end = True
        self.host_level = "group"  # or "rec": the related incident itself must be joinable
        self.recs: dict[str, _Rec] = {}
        self.svc_index: dict[str, set[str]] = {}
        self.dep_index: dict[str, dict[str, float]] = {}  # dep -> {incident: first caller t}
        self.root_index: dict[str, set[str]] = {}  # root service -> indexed incident ids
        self._br_cache: dict[str, frozenset[str]] = {}
        self.parent: dict[str, str] = {}
        self.groups: dict[str, Group] = {}
        #: incident -> {incident linked but not merged: when}
        self.links: dict[str, dict[str, float]] = {}
        self.heap: list[tuple[float, str]] = []
        self.watermark = -INF
        #: control messages for the domains: (incident id, domain, group first alert time), so
        #: a member incident stops taking alerts max_span_s after its *group* began
        self.span_updates: list[tuple[str, str, float]] = []
        self._span_sent: dict[str, float] = {}
        #: control messages: (incident, domain, t): undo its provisional reopen (a series of
        #: another domain related to it within burst_merge_s of the reopen)
        self.split_requests: list[tuple[str, str, float]] = []
        self.pending_split: dict[str, str] = {}  # reopened incident -> incident to join the split
        #: evaluation only (never evicted): every union performed, in order
        self.union_log: list[tuple[str, str]] = []
        #: evaluation only: group id -> (sequence, root, candidates) at its latest ranking
        self.eval_roots: dict[str, tuple[int, str | None, list[tuple[str, float]]]] = {}
        self.stats = {"summaries": 0, "lookups": 0, "merges": 0, "links": 0, "reranks": 0}

    # ------------------------------------------------------------------ union-find, groups

    def find(self, x: str) -> str:
        root = x
        parent = self.parent
        while True:
            p = parent.get(root, root)
            if p == root:
                break
            root = p
        while x != root:  # path compression
            nxt = parent.get(x, x)
            parent[x] = root
            x = nxt
        return root

    def _group(self, iid: str) -> Group:
        r = self.find(iid)
        grp = self.groups.get(r)
        if grp is None:
            rec = self.recs[iid]
            grp = self.groups[r] = Group(id=r, members={r}, first_t=rec.first_t,
                                         last_t=rec.last_t, domains={rec.domain})
            if rec.status != "resolved":
                grp.unresolved.add(r)
            if rec.index_end is None:
                grp.matching.add(r)
            else:
                grp.matching_end = rec.index_end
        return grp

    def _union(self, a: str, b: str, why: str) -> Group:
        ga, gb = self._group(a), self._group(b)
        if ga is gb:
            return ga
        # survivor: the group opened first (ties: smaller id); its id stays the group id
        if (gb.first_t, gb.id) < (ga.first_t, ga.id):
            ga, gb = gb, ga
        self.parent[gb.id] = ga.id
        del self.groups[gb.id]
        ga.members |= gb.members
        ga.domains |= gb.domains
        ga.unresolved |= gb.unresolved
        ga.resolved_t = max(ga.resolved_t, gb.resolved_t)
        ga.matching |= gb.matching
        ga.matching_end = max(ga.matching_end, gb.matching_end)
        ga.first_t = min(ga.first_t, gb.first_t)
        ga.last_t = max(ga.last_t, gb.last_t)
        for svc, kinds in gb.evidence.items():
            cur = ga.evidence.get(svc)
            if cur is None:
                ga.evidence[svc] = set(kinds)
                ga.first_seen[svc] = gb.first_seen[svc]
                ga.pending += 1
            else:
                if not kinds <= cur:
                    cur |= kinds
                    ga.pending += 1
                if gb.first_seen[svc] < ga.first_seen[svc]:
                    ga.first_seen[svc] = gb.first_seen[svc]
        for r in gb.reasons:
            if len(ga.reasons) < self.MAX_REASONS:
                ga.reasons.append(r)
        ga.n_reasons += gb.n_reasons + 1
        if len(ga.reasons) < self.MAX_REASONS:
            ga.reasons.append(why)
        if not ga.ranked or gb.ranked:
            ga.ranked = False  # rank the union soon
        self.union_log.append((a, b))
        self.stats["merges"] += 1
        self._span_notify(ga)
        return ga

    def _span_notify(self, grp: Group) -> None:
        t0 = grp.first_t
        for m in grp.members:
            rec = self.recs.get(m)
            if rec is None or rec.gone or rec.first_t <= t0:
                continue
            if self._span_sent.get(m, INF) > t0:
                self._span_sent[m] = t0
                self.span_updates.append((m, rec.domain, t0))

    def _br(self, root: str) -> frozenset[str]:
        """Blast radius of ``root`` (empty for a service missing from the topology)."""
        r = self._br_cache.get(root)
        if r is None:
            r = self._br_cache[root] = (self.g.blast_radius(root) if self.g.known(root)
                                        else frozenset())
        return r

    def _multi(self, grp: Group) -> bool:
        return len(grp.domains) > 1

    # ------------------------------------------------------------------ indices

    def _index(self, rec: _Rec) -> None:
        if rec.indexed:
            return
        rec.indexed = True
        for svc in rec.evidence:
            self._index_service(rec, svc)
        if rec.root:
            self._br(rec.root)
            self.root_index.setdefault(rec.root, set()).add(rec.id)

    def _index_service(self, rec: _Rec, svc: str) -> None:
        self.svc_index.setdefault(svc, set()).add(rec.id)
        if self.s.shared_dependency:
            t = rec.first_seen[svc]
            for d in self.g.deps1(svc):
                ids = self.dep_index.setdefault(d, {})
                if t < ids.get(rec.id, INF):
                    ids[rec.id] = t

    def _unindex(self, rec: _Rec) -> None:
        if not rec.indexed:
            return
        rec.indexed = False
        for svc in rec.evidence:
            _discard(self.svc_index, svc, rec.id)
            for d in self.g.deps1(svc):
                ids = self.dep_index.get(d)
                if ids is not None:
                    ids.pop(rec.id, None)
                    if not ids:
                        del self.dep_index[d]
        if rec.root:
            _discard(self.root_index, rec.root, rec.id)

    # ------------------------------------------------------------------ time

    def _group_joinable(self, grp: Group, t: float) -> bool:
        """Would the single-domain incident ``grp`` stands for take an alert at ``t``?"""
        s = self.s
        if grp.last_t < t - s.join_gap_s:
            return False
        if self.use_index_end and not grp.matching and grp.matching_end <= t:
            return False  # every member's correlator had stopped matching alerts to it
        if s.max_span_s > 0 and t - grp.first_t > s.max_span_s:
            return False
        return not (not grp.unresolved and grp.resolved_t <= t)

    def _join_end(self, grp: Group) -> float:
        """Event time after which no alert can join ``grp`` any more (nor reopen it)."""
        s = self.s
        d = grp.last_t + s.join_gap_s + s.allowed_lateness_s
        if s.max_span_s > 0:
            d = min(d, grp.first_t + s.max_span_s + s.allowed_lateness_s)
        if not grp.unresolved and grp.resolved_t > -INF:
            d = max(d, grp.resolved_t + s.reopen_window_s + s.allowed_lateness_s)
        return d

    def _reopens(self, grp: Group, joiner: _Rec, t: float) -> bool:
        """Would the alert that opened ``joiner`` at ``t`` reopen the resolved single-domain
        incident ``grp`` (the same series firing again within ``reopen_window_s`` of the
        group's resolution)?"""
        fp = joiner.opener_fp
        if fp is None or grp.unresolved or not (
                grp.resolved_t <= t < grp.resolved_t + self.s.reopen_window_s):
            return False
        # the series' latest incident before ``joiner`` (its domain's fingerprint index) must
        # be a member of ``grp``
        latest = max((r for r in self.recs.values()
                      if r is not joiner and r.domain == joiner.domain and fp in r.fps
                      and r.first_t <= t), key=lambda r: (r.first_t, r.id), default=None)
        return latest is not None and self.find(latest.id) == grp.id

    def _due(self, rec: _Rec) -> float | None:
        """When to look at ``rec`` again: unindex at its group's join end, forget once
        resolved and past the reopen window."""
        if rec.indexed:
            return self._join_end(self._group(rec.id))
        if rec.status == "resolved":
            s = self.s
            return max(max(rec.resolved_t or rec.last_t, rec.last_t) + s.reopen_window_s,
                       rec.last_t + s.join_gap_s + s.allowed_lateness_s)
        return None

    def advance(self, now: float) -> None:
        """Watermark: in production the minimum over the input partitions of the event time
        each has reached, less the allowed lateness."""
        if now > self.watermark:
            self.watermark = now
        heap = self.heap
        while heap and heap[0][0] <= self.watermark:
            _, iid = heapq.heappop(heap)
            rec = self.recs.get(iid)
            if rec is None:
                continue
            due = self._due(rec)
            if due is not None and due > self.watermark:
                heapq.heappush(heap, (due, iid))
                continue
            if rec.indexed:
                self._unindex(rec)
                due = self._due(rec)
                if due is not None and due > self.watermark:
                    heapq.heappush(heap, (due, iid))
                    continue
            if rec.status == "resolved" or rec.gone:
                self._forget(rec)

    def _forget(self, rec: _Rec) -> None:
        grp = self._group(rec.id)
        del self.recs[rec.id]
        self._span_sent.pop(rec.id, None)
        for q in self.links.pop(rec.id, {}):
            other = self.links.get(q)
            if other is not None:
                other.pop(rec.id, None)
        if all(m not in self.recs for m in grp.members):
            if len(grp.members) > 1 and (grp.pending or not grp.ranked):
                self.rerank(grp)  # its final ranking
            del self.groups[grp.id]
            for m in grp.members:
                self.parent.pop(m, None)

    # ------------------------------------------------------------------ input

    def on_summary(self, sm: Summary) -> list[GroupEvent]:
        return self.on_batch([sm])

    def on_batch(self, batch: list[Summary]) -> list[GroupEvent]:
        """One batch of summaries (a ``take`` from the summaries topic): first every change is
        applied (times, evidence, status), then the new and re-alerting services are linked,
        so the outcome does not depend on the order of summaries within the batch."""
        self.stats["summaries"] += len(batch)
        if self.mode == "none":
            return []
        self.batch_no = getattr(self, "batch_no", 0) + 1
        work: list[tuple[_Rec, list[str], list[tuple[str, float]], bool, str]] = []
        for sm in batch:
            item = self._apply(sm)
            if item is not None:
                work.append(item)
        for rec, new_services, _, _, _ in work:
            if rec.id not in self.recs or self.mode == "declared":
                continue
            for svc in sorted(new_services, key=lambda x: (rec.first_seen[x], x)):
                self._link_service(rec, svc, rec.first_seen[svc], repeat=False)
        for rec, _, relink, _, _ in work:
            if rec.id not in self.recs or self.mode == "declared":
                continue
            for svc, t in relink:
                self._link_service(rec, svc, t, repeat=True)
        events: list[GroupEvent] = []
        done: set[str] = set()
        for rec, _, _, root_changed, before in work:
            if rec.id not in self.recs:
                continue
            if root_changed or self.find(rec.id) != before:
                self._recheck_links(rec.id)
            grp = self._group(rec.id)
            if len(grp.members) == 1 or grp.id in done:
                continue
            done.add(grp.id)
            old_root = grp.root
            self._maybe_rerank(grp, force=not grp.ranked)
            typ = "merged" if self.find(rec.id) != before else (
                "root_cause_changed" if grp.root != old_root else "updated")
            events.append(GroupEvent(typ, grp.id, sorted(grp.members), grp.root,
                                     self.explanation(grp)))
        return events

    def _apply(self, sm: Summary):
        rec = self.recs.get(sm.id)
        if sm.merged_into:
            # its own domain's correlator absorbed it: its alerts are the target's now
            if rec is not None:
                self._unindex(rec)
                rec.gone = True
                self._set_status(rec, "resolved", sm.last_t)
                g_ = self._group(rec.id)
                g_.matching.discard(rec.id)
                g_.matching_end = max(g_.matching_end, sm.last_t)
                if sm.merged_into not in self.recs:  # the target's summary comes later
                    self.recs[sm.merged_into] = _Rec(sm.merged_into, sm.domain, "open",
                                                     sm.first_t, sm.last_t)
                self._union(sm.merged_into, sm.id,
                            f"{sm.id} merged into {sm.merged_into} within {sm.domain}")
                heapq.heappush(self.heap, (self.watermark, sm.id))
            return None
        new_services: list[str] = []
        root_changed = False
        if rec is None:
            rec = self.recs[sm.id] = _Rec(sm.id, sm.domain, sm.status, sm.first_t, sm.last_t)
        else:
            root_changed = sm.root != rec.root
        grp = self._group(sm.id)
        before = grp.id
        if sm.rebuilt and rec.evidence:
            self._unindex(rec)  # services left it: start its evidence over
            rec.evidence, rec.first_seen = {}, {}
            grp.evidence, grp.first_seen, grp.cache = {}, {}, RankCache()
            for m in grp.members:
                r = self.recs.get(m)
                if r is not None and r is not rec:
                    for svc, ks in r.evidence.items():
                        grp.evidence.setdefault(svc, set()).update(ks)
                        fs = grp.first_seen.get(svc)
                        if fs is None or r.first_seen[svc] < fs:
                            grp.first_seen[svc] = r.first_seen[svc]
            grp.pending += 1
        rec.reopen_t = sm.reopen_t
        if rec.indexed and root_changed and rec.root:
            _discard(self.root_index, rec.root, rec.id)
        rec.first_t, rec.last_t = sm.first_t, max(rec.last_t, sm.last_t)
        rec.root, rec.candidates, rec.n_alerts = sm.root, sm.candidates, sm.n_alerts
        self._set_status(rec, sm.status, sm.resolved_t)
        rec.index_end = sm.index_end
        if sm.index_end is None:
            grp.matching.add(rec.id)
        else:
            grp.matching.discard(rec.id)
            grp.matching_end = max(grp.matching_end, sm.index_end)
        grp.first_t = min(grp.first_t, rec.first_t)
        grp.last_t = max(grp.last_t, rec.last_t)
        for svc, kinds in sm.evidence.items():
            ks = set(kinds)
            if svc not in rec.evidence:
                new_services.append(svc)
                rec.learned[svc] = self.batch_no
            rec.evidence[svc] = ks
            rec.first_seen[svc] = sm.first_seen[svc]
            cur = grp.evidence.get(svc)
            if cur is None:
                grp.evidence[svc] = set(ks)
                grp.first_seen[svc] = sm.first_seen[svc]
                grp.pending += 1
            else:
                if not ks <= cur:
                    cur |= ks
                    grp.pending += 1
                if sm.first_seen[svc] < grp.first_seen[svc]:
                    grp.first_seen[svc] = sm.first_seen[svc]
        if sm.fps:
            if rec.opener_fp is None:
                rec.opener_fp = sm.fps[0]
            rec.fps.update(sm.fps)
        relink = [(svc, t) for svc, t in sm.last_seen.items()
                  if svc in rec.evidence and svc not in new_services]
        if len(grp.members) == 1:
            grp.root, grp.candidates = rec.root, list(rec.candidates)
        # indexed while an alert could still join it (resolved or not: its domain may have
        # resolved it within the step that brought its alerts)
        if self._join_end(grp) > self.watermark:
            if not rec.indexed:
                self._index(rec)
            else:
                for svc in new_services:
                    self._index_service(rec, svc)
                if root_changed and rec.root:
                    self._br(rec.root)
                    self.root_index.setdefault(rec.root, set()).add(rec.id)
        due = self._due(rec)
        if due is not None:
            heapq.heappush(self.heap, (due, rec.id))
        if sm.split_from is not None:
            other = self.pending_split.pop(sm.split_from, None)
            if other is not None and other in self.recs:
                self._union(other, rec.id, f"{rec.id} (split off {sm.split_from}: a new burst, "
                            f"not a recurrence) merged with {other} across domains")
        return rec, new_services, relink, root_changed, before

    def declare(self, local: str, foreign: str, why: str) -> None:
        """A domain's correlator decided, at alert level, that ``local`` is part of the
        (other domain's) incident ``foreign`` (ghost mode)."""
        if local not in self.recs or foreign not in self.recs:
            self.stats["declared_lost"] = self.stats.get("declared_lost", 0) + 1
            return
        if self.find(local) != self.find(foreign):
            r = self.recs[local]
            self._union(foreign, local, f"{local} ({r.domain}) merged with {foreign} "
                        f"({self.recs[foreign].domain}) across domains: {why}")

    def group_root(self, iid: str) -> str | None:
        grp = self.groups.get(self.find(iid))
        return grp.root if grp is not None else None

    def _set_status(self, rec: _Rec, status: str, resolved_t: float | None) -> None:
        rec.status = status
        rec.resolved_t = resolved_t
        grp = self._group(rec.id)
        if status == "resolved":
            grp.unresolved.discard(rec.id)
            grp.resolved_t = max(grp.resolved_t, resolved_t if resolved_t is not None
                                 else rec.last_t)
        else:
            grp.unresolved.add(rec.id)

    # ------------------------------------------------------------------ linking

    def _matches(self, rec: _Rec, x: str) -> list[tuple[float, str, str, str, float]]:
        """Indexed incidents of other groups related to service ``x`` of ``rec``:
        (strength, id, relation, via, when ``via`` first alerted there); lower strength is
        closer (the correlator's order). Same-domain incidents only when one of the two
        groups spans several domains."""
        s, g = self.s, self.g
        recs = self.recs
        svc_index = self.svc_index
        found: dict[str, tuple[float, str, str, str, float]] = {}

        def add(iid: str, strength: float, relation: str, via: str, t: float) -> None:
            cur = found.get(iid)
            if cur is None or strength < cur[0]:
                found[iid] = (strength, iid, relation, via, t)

        self.stats["lookups"] += 1
        for iid in svc_index.get(x, ()):
            add(iid, 0.0, "same", x, recs[iid].first_seen[x])
        if g.known(x):
            for nb, rel in ((g.down(x), "calls"), (g.up(x), "called-by")):
                # only the related services some indexed incident holds (C-level)
                for y in nb.keys() & svc_index.keys():
                    h = nb[y]
                    for iid in svc_index[y]:
                        add(iid, float(h), rel, y, recs[iid].first_seen[y])
            if s.shared_dependency:
                for d in g.deps1(x):
                    for iid, t in self.dep_index.get(d, {}).items():
                        add(iid, 2.5, "shared-dependency", d, t)
            if s.blast_radius and self.root_index:
                brc = self._br_cache  # filled for every indexed root by _index
                for root in [r for r in self.root_index if x in brc[r]]:
                    for iid in self.root_index[root]:
                        add(iid, s.hops + 1.0, "blast-radius", root, recs[iid].first_t)
        out = self._eligible(rec, found.values())
        if not out and s.undirected_burst_s > 0 and g.known(x):
            near = g.near(x)
            cand = {}
            for y in near.keys() & svc_index.keys():
                for iid in svc_index[y]:
                    strength = s.hops + 1.5 + near[y] / 10
                    if iid not in cand or strength < cand[iid][0]:
                        cand[iid] = (strength, iid, "path", y, recs[iid].first_seen[y])
            out = self._eligible(rec, cand.values())
        out.sort(key=lambda m: (m[0], -recs[m[1]].last_t, m[1]))
        return out

    def _eligible(self, rec: _Rec, found) -> list:
        mine = self._group(rec.id)
        out = []
        for m in found:
            q = self.recs[m[1]]
            if q is rec:
                continue
            gq = self._group(q.id)
            if gq is mine:
                continue
            if q.domain == rec.domain and not (self._multi(mine) or self._multi(gq)):
                continue  # the domain decided this pair with the same information
            out.append(m)
        return out

    def _link_service(self, rec: _Rec, x: str, fx: float, repeat: bool) -> None:
        """The pairwise test, symmetric in time: of the two related alerts (``x`` in ``rec``
        at ``fx``, ``via`` in the other incident) the later one is the one that would have
        joined; the other one's group must have been joinable then. ``repeat``: ``x`` was
        already in ``rec`` (a later alert of it): like the correlator, such an alert merges
        two incidents only when one of them is young or they share a cause."""
        if x not in rec.evidence:
            return
        matches = self._matches(rec, x)
        if not matches:
            return
        s = self.s
        first_link = not repeat
        find = self.find
        for _, qid, relation, via, fy in matches:
            if find(qid) == find(rec.id):
                continue
            q = self.recs[qid]
            gp, gq = self._group(rec.id), self._group(qid)
            if self.mode == "hybrid":
                # the domains saw each other's earlier incidents as ghosts and decided at
                # alert level; only pairs within one batch (no ghost yet) are judged here
                earlier_rec, earlier_svc = (q, via) if fx >= fy else (rec, x)
                if relation in ("shared-dependency", "blast-radius"):
                    known = min(earlier_rec.learned.values(), default=self.batch_no)
                else:
                    known = earlier_rec.learned.get(earlier_svc, self.batch_no)
                if known < self.batch_no:
                    continue
            # joiner: the incident of the later alert; host: the other one's group
            if fx >= fy:
                t, joiner, host, opener = fx, rec, gq, fx <= rec.first_t
            else:
                t, joiner, host, opener = fy, q, gp, fy <= q.first_t
            host_rec = q if joiner is rec else rec
            if self.host_level == "rec" and not self._group_joinable(
                    Group(host_rec.id, {host_rec.id}, host_rec.first_t, host_rec.last_t,
                          unresolved=set() if host_rec.status == "resolved" else {host_rec.id},
                          resolved_t=host_rec.resolved_t or -INF), t):
                continue
            if not self._group_joinable(host, t):
                # the one lifecycle coupling mirrored here: a recurrence that opened a new
                # incident in its domain, within the reopen window of the *group's* resolution
                # (a member resolves before its group when another domain's alerts go on)
                if (relation == "same" and opener and first_link and self._multi(host)
                        and self._reopens(host, joiner, t)):
                    self._union(qid, rec.id, self._why(rec, x, q, relation, via, fx, fy)
                                + f" (recurrence: reopens {host.id} within "
                                f"{fmt_delay(self.s.reopen_window_s)} of its resolution)")
                    first_link = False
                continue
            # the related incident was reopened just before: in one domain this series would
            # have undone the reopen (a new burst), not joined the old incident
            if (host_rec.reopen_t is not None and host_rec.domain != joiner.domain
                    and 0 <= t - host_rec.reopen_t <= s.burst_merge_s and not repeat):
                if host_rec.id not in self.pending_split:
                    self.split_requests.append((host_rec.id, host_rec.domain, t))
                    self.pending_split[host_rec.id] = joiner.id
                first_link = False
                continue
            if relation == "path" and t - host.first_t > s.undirected_burst_s:
                continue  # undirected relations only in the first moments of an incident
            if s.max_span_s > 0 and t - min(gp.first_t, gq.first_t) > s.max_span_s:
                continue  # the single-domain incident would have been cut by max_span_s
            why = self._why(rec, x, q, relation, via, fx, fy)
            if self.mode == "naive":
                self._union(qid, rec.id, why)
                continue
            young = t - max(gp.first_t, gq.first_t) <= s.burst_merge_s
            if opener and first_link:
                self._union(qid, rec.id, why + f" ({joiner.id} opened with it)")
            elif young and self.young_rule:
                self._union(qid, rec.id, why + " (same burst)" + (" REPEAT" if repeat else ""))
            elif self._shares_cause(gp, gq):
                self._union(qid, rec.id, why + f" (shared root cause {gp.root})")
            else:
                self.links.setdefault(rec.id, {})[qid] = t
                self.links.setdefault(qid, {})[rec.id] = t
                self.stats["links"] += 1
            first_link = False

    def _recheck_links(self, iid: str) -> None:
        if self.mode != "mirror":
            return
        for qid, t in sorted(self.links.get(iid, {}).items()):
            if qid not in self.recs or self.find(qid) == self.find(iid):
                continue
            gp, gq = self._group(iid), self._group(qid)
            if self.s.max_span_s > 0 and t - min(gp.first_t, gq.first_t) > self.s.max_span_s:
                continue
            if not (gp.unresolved and gq.unresolved):
                continue  # the correlator merges open incidents only
            self._maybe_rerank(gp)
            self._maybe_rerank(gq)
            if self._shares_cause(gp, gq):
                self._union(qid, iid, f"{iid} and {qid}: shared root cause {gp.root}")

    def _shares_cause(self, a: Group, b: Group) -> bool:
        ra, rb = a.root, b.root
        if not ra or not rb:
            return False
        if ra == rb:
            return True
        g = self.g
        if not (g.known(ra) and g.known(rb)):
            return False
        return rb in g.blast_radius(ra) or ra in g.blast_radius(rb)

    def _why(self, rec: _Rec, x: str, q: _Rec, relation: str, via: str, fx: float,
             fy: float) -> str:
        where = f"{x} ({rec.domain})"
        there = f"{via} ({q.domain}, in {q.id})"
        if relation == "same":
            txt = f"same service {x} alerting in {rec.id} and {q.id}"
        elif relation == "calls":
            txt = f"{where} depends on {there}"
        elif relation == "called-by":
            txt = f"{there} depends on {where}"
        elif relation == "shared-dependency":
            txt = f"{where} and an alerting service of {q.id} ({q.domain}) both call {via}"
        elif relation == "blast-radius":
            txt = f"{where} is in the blast radius of {q.id}'s root cause {via} ({q.domain})"
        else:
            txt = f"{where} is near {there} ignoring call direction"
        scope = "across domains" if q.domain != rec.domain else "(group spans domains)"
        return f"{rec.id} merged with {q.id} {scope}: {txt}, alerts {fmt_delay(abs(fx - fy))} apart"

    # ------------------------------------------------------------------ ranking, output

    def _maybe_rerank(self, grp: Group, force: bool = False) -> bool:
        if len(grp.members) == 1:
            return False
        n = len(grp.evidence)
        if not grp.pending and not force:
            return False
        if not force and n > self.s.rerank_every_upto and grp.pending < self.s.rerank_growth * n:
            return False
        self.rerank(grp)
        return True

    def rerank(self, grp: Group) -> None:
        self.stats["reranks"] += 1
        grp.pending = 0
        grp.ranked = True
        ranked: list[Ranked] = rank(
            grp.evidence, grp.first_seen, self.g, self.s.rank, DEFAULT_LLR, cache=grp.cache
        )
        grp.root = ranked[0].service if ranked else None
        grp.candidates = [(r.service, round(r.score, 4)) for r in ranked]
        self.eval_roots[grp.id] = (self.stats["reranks"], grp.root, grp.candidates)

    def explanation(self, grp: Group) -> str:
        doms = sorted(grp.domains)
        lines = [
            f"Merged across {len(doms)} correlation domain{'s' if len(doms) > 1 else ''} "
            f"({', '.join(doms[:4])}{' ...' if len(doms) > 4 else ''}): "
            f"{len(grp.members)} per-domain incidents."
        ]
        lines += grp.reasons[:3]
        if grp.n_reasons > 3:
            lines.append(f"... and {grp.n_reasons - 3} more merges.")
        if grp.root:
            lines.append(f"Root cause re-ranked over the merged evidence ({len(grp.evidence)} "
                         f"services): {grp.root} ({grp.candidates[0][1]:.2f}).")
        return "\n".join(lines)

    def finish(self) -> None:
        for grp in list(self.groups.values()):
            if len(grp.members) > 1 and (grp.pending or not grp.ranked):
                self.rerank(grp)

    def state_size(self) -> dict[str, int]:
        return {
            "incidents": len(self.recs),
            "indexed": sum(1 for r in self.recs.values() if r.indexed),
            "groups": len(self.groups),
            "svc_index_entries": sum(len(v) for v in self.svc_index.values()),
            "evidence_entries": sum(len(r.evidence) for r in self.recs.values())
            + sum(len(g.evidence) for g in self.groups.values()),
        }


def _discard(index: dict[str, set[str]], key: str, iid: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(iid)
        if not ids:
            del index[key]
