"""Drivers: single-domain replay, partitioned replay with the merge stage, scoring."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from merge import GroupEvent, Merger, Summary
from pipeline.adapters.memory_store import MemoryStore
from pipeline.bench.rca_score import score as rca_score
from pipeline.domain.correlate import CorrelationSettings, Correlator, _State
from pipeline.domain.pipeline import AlertPipeline, event_tick
from pipeline.domain.rootcause import KindClassifier
from pipeline.domain.schemas import Alert, EventType, Incident, IncidentEvent, IncidentStatus
from pipeline.domain.topology import Topology
from pipeline.offline.replay import END_OF_TIME, TICK_S, replay_alerts

CHUNK = 1000  # alerts per step (replay's chunk; a worker step of the by-domain topic)


@dataclass
class Grouping:
    """A final grouping of firing alerts: incident id -> alert ids, root, candidates."""

    groups: dict[str, list[str]]
    roots: dict[str, str | None]
    cands: dict[str, list[str]]
    opened: dict[str, float]
    stats: dict[str, Any] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        ids = sorted(self.groups, key=lambda i: (self.opened[i], i))
        return [
            {
                "id": i,
                "alert_ids": self.groups[i],
                "root_cause": self.roots[i],
                "root_cause_candidates": [{"service": c} for c in self.cands[i]],
            }
            for i in ids
        ]


def _from_incidents(incs: Sequence[Incident]) -> Grouping:
    g = Grouping({}, {}, {}, {})
    for inc in incs:
        if inc.merged_into or not inc.alert_ids:
            continue
        g.groups[inc.id] = list(inc.alert_ids)
        g.roots[inc.id] = inc.root_cause
        g.cands[inc.id] = [c.service for c in inc.root_cause_candidates]
        g.opened[inc.id] = inc.opened_at.timestamp()
    return g


def single_domain(topo: Topology, alerts: Sequence[Alert],
                  settings: CorrelationSettings | None = None) -> Grouping:
    t0 = time.process_time()
    g = _from_incidents(replay_alerts(topo, alerts, settings))
    g.stats["cpu_s"] = time.process_time() - t0
    return g


# ------------------------------------------------------------------------------ correlator


class SpanCorrelator(Correlator):
    """The correlator plus one control input, ``set_span_start(incident, t)``: the merge stage
    says the incident belongs to a cross-domain group that began at ``t``, so it takes no new
    alerts after ``t + max_span_s`` (as the single-domain incident would not). A prototype of
    a small change to ``Correlator`` (a ``span_start`` field on the incident state)."""

    def __init__(self, topology: Topology, settings: CorrelationSettings | None = None) -> None:
        super().__init__(topology, settings)
        self.span_start: dict[str, float] = {}
        self.group_age = True
        #: incident -> event time its correlator stopped matching alerts to it (unindexed)
        self.unindexed_at: dict[str, float] = {}
        self.split_from: dict[str, str] = {}  # incident split off -> the one it came from

    def _unindex(self, st: _State) -> None:
        if st.indexed:
            self.unindexed_at[st.inc.id] = self._watermark
        super()._unindex(st)

    def _index(self, st: _State) -> None:
        self.unindexed_at.pop(st.inc.id, None)
        super()._index(st)

    def _evict(self, st: _State) -> None:
        super()._evict(st)
        self.unindexed_at.pop(st.inc.id, None)

    def set_span_start(self, iid: str, t: float) -> None:
        st = self._states.get(iid)
        if st is None or t >= min(st.first_t, self.span_start.get(iid, st.first_t)):
            return
        self.span_start[iid] = t
        self._schedule(st)

    def _start(self, st: _State) -> float:
        return min(st.first_t, self.span_start.get(st.inc.id, st.first_t))

    def _too_old(self, st: _State, t: float) -> bool:
        span = self.settings.max_span_s
        return span > 0 and t - self._start(st) > span

    def _next_due(self, st: _State) -> float | None:
        due = super()._next_due(st)
        s = self.settings
        if due is not None and st.indexed and s.max_span_s > 0 and st.inc.id in self.span_start:
            due = min(due, self._start(st) + s.max_span_s + s.allowed_lateness_s + 1e-6)
        return due

    def split_reopened(self, iid: str, t: float) -> list[IncidentEvent]:
        """Control from the merge stage: a series of another domain related to ``iid`` at
        ``t``, within ``burst_merge_s`` of ``iid``'s provisional reopen: in one domain the
        reopen would have been undone (``Correlator._split_reopened``). Returns the events."""
        st = self._states.get(iid)
        s = self.settings
        if (st is None or st.reopen_t is None or not 0 <= t - st.reopen_t <= s.burst_merge_s
                or len(st.members) <= st.reopen_at):
            return []
        from datetime import UTC, datetime
        at = datetime.fromtimestamp(t, UTC)
        ev, detail, nst = self._split_reopened(st, at)
        self.split_from[nst.inc.id] = iid
        return [ev, self._emit(nst, EventType.opened, at,
                               detail + " (a related series alerted in another domain)")]

    def _merge_shared(self, st: _State, others: list[str], at) -> list[IncidentEvent]:
        """``Correlator._merge_shared`` with one change: an incident's age for the burst test
        is its cross-domain group's (``span_start``), since in one domain it would be part of
        that older incident (``group_age=False`` restores the original)."""
        if not self.group_age:
            return super()._merge_shared(st, others, at)
        events: list[IncidentEvent] = []
        for oid in others:
            ost = self._states.get(oid)
            if ost is None or ost is st or ost.inc.status is IncidentStatus.resolved:
                continue
            young = at.timestamp() - max(self._start(st), self._start(ost)) <= \
                self.settings.burst_merge_s
            shared = self._shares_cause(st, ost)
            if young or shared:
                target, src = (st, ost) if st.first_t <= ost.first_t else (ost, st)
                why = (
                    f"same root cause {target.inc.root_cause}"
                    if shared
                    else "opened in the same burst and linked by a later alert"
                )
                events.extend(self._merge(target, src, at, why))
                st = target
        return events

    def advance(self, now: float) -> list[IncidentEvent]:
        if self.span_start:
            s = self.settings
            for iid, t0 in list(self.span_start.items()):
                st = self._states.get(iid)
                if st is None:
                    del self.span_start[iid]
                elif st.indexed and now > t0 + s.max_span_s + s.allowed_lateness_s:
                    self._unindex(st)
        return super().advance(now)


# ------------------------------------------------------------------------------ summaries


class SummaryEmitter:
    """What a per-domain worker would put on the internal summaries topic: one summary per
    incident per step, only when something the merge stage uses changed (new service or
    kind, root cause, status, in-domain merge, or the last alert time moved on by
    ``last_t_step_s``); evidence as a delta."""

    def __init__(self, last_t_step_s: float = 30.0, relink_step_s: float = 10.0) -> None:
        self.sent: dict[str, tuple[dict[str, frozenset[str]], str | None, str, float]] = {}
        self.fps_sent: dict[str, set[str]] = {}
        self.index_sent: dict[str, float | None | str] = {}
        self.reopen_sent: dict[str, float | None] = {}
        self.step = last_t_step_s
        self.relink_step = relink_step_s
        #: per incident: members scanned so far, newest alert per service, time last sent
        self.scan: dict[str, tuple[int, dict[str, float], dict[str, float]]] = {}
        self.kind = KindClassifier()
        self.bytes = 0
        self.count = 0
        self.max_bytes = 0

    def summarize(self, pipe: AlertPipeline, inc: Incident) -> Summary | None:
        st = pipe.correlator._states.get(inc.id)
        if inc.merged_into:
            self.sent.pop(inc.id, None)
            t = inc.updated_at.timestamp()
            return self._count(Summary(inc.id, inc.domain, "resolved", t, t, {}, {}, None, [],
                                       merged_into=inc.merged_into))
        if st is not None:
            evidence = {s: frozenset(k) for s, k in st.evidence.items()}
            first_seen = st.first_seen
            first_t, last_t = st.first_t, st.last_t
        else:  # already evicted by its correlator: rebuild from the incident
            evidence, first_seen = {}, {}
            for ref in inc.alerts:
                t = ref.timestamp.timestamp()
                evidence.setdefault(ref.service, frozenset())
                evidence[ref.service] |= {self.kind(ref.name)}
                first_seen[ref.service] = min(first_seen.get(ref.service, t), t)
            first_t = min(first_seen.values()) if first_seen else inc.opened_at.timestamp()
            last_t = max(first_seen.values()) if first_seen else first_t
        prev = self.sent.get(inc.id)
        old_ev, old_root, old_status, old_last = prev if prev else ({}, None, "", float("-inf"))
        rebuilt = any(svc not in evidence for svc in old_ev)  # a split took services away
        if rebuilt:
            old_ev = {}
        delta = {s: sorted(k) for s, k in evidence.items() if old_ev.get(s) != k}
        reopen_t = st.reopen_t if st is not None else None
        status = inc.status.value
        # a new alert series on a service already sent: the correlator matched that alert
        # against every related incident (a repeat of a firing series, a flap or a reopen did
        # not go through matching, so they are not sent); members scanned incrementally
        relink: dict[str, float] = {}
        if st is not None:
            n, seen_fps = self.scan.get(inc.id, (0, set()))
            if n > len(st.members):  # a split: rescan
                n, seen_fps = 0, set()
            for m in st.members[n:]:
                if m.fp in seen_fps:
                    continue
                seen_fps.add(m.fp)
                if m.service in old_ev and m.service not in delta:
                    relink[m.service] = min(relink.get(m.service, m.t), m.t)
            self.scan[inc.id] = (len(st.members), seen_fps)
        new_fps: list[str] = []
        if st is not None:
            sent_fps = self.fps_sent.setdefault(inc.id, set())
            if not sent_fps and st.members:
                first = min(st.members, key=lambda m: m.t).fp
                new_fps.append(first)
                sent_fps.add(first)
            for fp in st.fp_last:
                if fp not in sent_fps:
                    new_fps.append(fp)
                    sent_fps.add(fp)
        if st is not None:
            index_end = None if st.indexed else pipe.correlator.unindexed_at.get(inc.id, last_t)
        else:  # evicted within this step: it stopped matching at its join end or resolution
            cs = pipe.correlator.settings
            index_end = last_t + cs.join_gap_s + cs.allowed_lateness_s
            if inc.resolved_at is not None:
                index_end = min(index_end, inc.resolved_at.timestamp())
        old_index_end = self.index_sent.get(inc.id, "unset")
        if not delta and not relink and not new_fps and inc.root_cause == old_root and \
                status == old_status and last_t - old_last < self.step and \
                index_end == old_index_end and reopen_t == self.reopen_sent.get(inc.id):
            return None
        self.reopen_sent[inc.id] = reopen_t
        self.index_sent[inc.id] = index_end
        self.sent[inc.id] = (evidence, inc.root_cause, status, last_t)
        if status == "resolved" and st is None:
            self.sent.pop(inc.id, None)
        sm = Summary(
            inc.id, inc.domain, status, first_t, last_t, delta,
            {s: first_seen[s] for s in delta}, inc.root_cause,
            [(c.service, c.score) for c in inc.root_cause_candidates],
            n_alerts=len(inc.alert_ids),
            resolved_t=inc.resolved_at.timestamp() if inc.resolved_at else None,
            last_seen=relink,
            fps=new_fps,
            index_end=index_end,
            reopen_t=reopen_t,
            split_from=pipe.correlator.split_from.get(inc.id),
            rebuilt=rebuilt,
        )
        return self._count(sm)

    def _count(self, sm: Summary) -> Summary:
        n = len(msgspec.msgpack.encode(sm))
        self.bytes += n
        self.count += 1
        self.max_bytes = max(self.max_bytes, n)
        return sm


# ------------------------------------------------------------------------------ partitioned


def _steps(alerts: Sequence[Alert], chunk: int, step_s: float | None):
    """Steps of at most ``chunk`` alerts (a backlog: steps are full) and, with ``step_s``, at
    most ``step_s`` seconds of event time (live: a step holds what arrived in a few ms)."""
    start = 0
    n = len(alerts)
    while start < n:
        end = min(n, start + chunk)
        if step_s is not None:
            limit = alerts[start].epoch + step_s
            j = start + 1
            while j < end and alerts[j].epoch < limit:
                j += 1
            end = j
        yield alerts[start:end]
        start = end


def partitioned(
    topo: Topology,
    alerts: Sequence[Alert],
    dom: dict[str, str],
    mode: str = "mirror",
    settings: CorrelationSettings | None = None,
    chunk: int = CHUNK,
    last_t_step_s: float = 30.0,
    span_feedback: bool = True,
    capture: list | None = None,
    relink_step_s: float = 10.0,
    step_s: float | None = None,
    variant: dict | None = None,
) -> Grouping:
    """Route every alert to its domain's own AlertPipeline (each sees the whole topology),
    replay in global event-time order in steps of ``chunk`` alerts, tick every domain's
    lifecycle clock at the end of each step (the worker's event-time timer), feed the
    summaries of each step to the merge stage, and read off the merged grouping."""
    ptopo = Topology(name=topo.name, graph=topo.graph, teams=topo.teams)
    ptopo._domain_of.clear()
    ptopo._domain_of.update(dom)
    pipes: dict[str, tuple[AlertPipeline, MemoryStore]] = {}
    merger = Merger(ptopo, settings, mode={"ghost": "declared", "hybrid": "hybrid"}.get(mode, mode))
    ghost_copies = [0, 0]  # (summaries, domains that would hold a ghost of them)
    rel_domains: dict[str, set[str]] = {}

    def related_domains(svc: str) -> set[str]:
        r = rel_domains.get(svc)
        if r is None:
            g_ = merger.g
            near = set(g_.up(svc)) | set(g_.down(svc)) if g_.known(svc) else set()
            for d_ in g_.deps1(svc) if g_.known(svc) else ():
                near |= set(g_.up(d_))
            r = rel_domains[svc] = {ptopo.domain(y) for y in near}
        return r
    for k_, v_ in (variant or {}).items():
        setattr(merger, k_, v_)
    emitter = SummaryEmitter(last_t_step_s, relink_step_s)
    final: dict[str, Incident] = {}
    n_events = 0
    merge_cpu = 0.0
    domain_cpu = 0.0
    group_events: list[GroupEvent] = []
    peak = {"incidents": 0, "indexed": 0, "svc_index_entries": 0, "evidence_entries": 0,
            "groups": 0}

    def pipe_of(d: str) -> tuple[AlertPipeline, MemoryStore]:
        p = pipes.get(d)
        if p is None:
            if mode in ("ghost", "hybrid"):
                from ghost import GhostCorrelator
                corr = GhostCorrelator(ptopo, settings)
            else:
                corr = SpanCorrelator(ptopo, settings)
            p = pipes[d] = (AlertPipeline(ptopo, correlation=settings, correlator=corr),
                            MemoryStore())
        return p

    def feed(batch: list[tuple[AlertPipeline, IncidentEvent]]) -> None:
        nonlocal n_events, merge_cpu
        n_events += len(batch)
        seen: dict[str, tuple[AlertPipeline, Incident]] = {}
        for pipe, ev in batch:
            final[ev.incident.id] = ev.incident
            seen[ev.incident.id] = (pipe, ev.incident)
        sums = [emitter.summarize(p, inc) for p, inc in seen.values()]
        sums = [s for s in sums if s is not None]
        # absorbed incidents first: their links move to the survivor before it is examined
        sums.sort(key=lambda s: (s.merged_into is None,
                                 min(s.first_seen.values()) if s.first_seen else s.last_t, s.id))
        if capture is not None:
            capture.append(("batch", sums))
        t0 = time.process_time()
        group_events.extend(merger.on_batch(sums))
        if mode in ("ghost", "hybrid"):
            for pipe, _ in pipes.values():
                for a_, b_, why_ in pipe.correlator.drain_declared():
                    merger.declare(a_, b_, why_)
        merge_cpu += time.process_time() - t0
        if mode in ("ghost", "hybrid"):  # ghosts to the other domains (simulation: to every domain)
            for sm in sums:
                if sm.merged_into is None:
                    rec_ = merger.recs.get(sm.id)
                    if rec_ is not None:
                        ds = set().union(*(related_domains(x) for x in rec_.evidence)) \
                            if rec_.evidence else set()
                        ghost_copies[0] += 1
                        ghost_copies[1] += len(ds - {sm.domain})
                root = merger.group_root(sm.id)
                grp_ = merger.groups.get(merger.find(sm.id)) if sm.id in merger.recs else None
                gft = grp_.first_t if grp_ is not None else None
                for d_, (pipe, _) in pipes.items():
                    if d_ != sm.domain:
                        pipe.correlator.ghost_update(sm, root, gft)
        # control messages back to the domains (over the by-domain topic, like feedback)
        for iid, d, t in merger.span_updates:
            nonlocal_ctrl[0] += 1
            if span_feedback and d in pipes:
                pipes[d][0].correlator.set_span_start(iid, t)
        merger.span_updates.clear()
        for iid, d, t in merger.split_requests:
            nonlocal_ctrl[0] += 1
            if d in pipes:
                pipe = pipes[d][0]
                carry.extend((pipe, ev) for ev in pipe.correlator.split_reopened(iid, t))
        merger.split_requests.clear()

    nonlocal_ctrl = [0]
    carry: list[tuple[AlertPipeline, IncidentEvent]] = []  # events caused by controls
    for part in _steps(alerts, chunk, step_s):
        by_dom: dict[str, list[Alert]] = defaultdict(list)
        for a in part:
            by_dom[ptopo.domain(a.service, a.labels)].append(a)
        batch: list[tuple[AlertPipeline, IncidentEvent]] = list(carry)
        carry.clear()
        t0 = time.process_time()
        for d in sorted(by_dom):
            pipe, store = pipe_of(d)
            out = pipe.process_in_event_time(by_dom[d], store.dedup, tick_s=TICK_S)
            store.dedup.update(out.dedup_states)
            batch.extend((pipe, ev) for ev in out.events)
        now = event_tick(part[-1].epoch, TICK_S)
        for pipe, _ in pipes.values():
            batch.extend((pipe, ev) for ev in pipe.tick_in_event_time(now, TICK_S))
        domain_cpu += time.process_time() - t0
        feed(batch)
        # the merge stage's watermark: every domain has processed up to `now` (in production
        # the minimum over its input partitions of the event time each has reached)
        t0 = time.process_time()
        wm = now - (settings or CorrelationSettings()).allowed_lateness_s
        merger.advance(wm)
        if mode in ("ghost", "hybrid"):
            for pipe, _ in pipes.values():
                pipe.correlator.ghost_expire(wm)
        if capture is not None:
            capture.append(("advance", wm))
        merge_cpu += time.process_time() - t0
        size = merger.state_size()
        for k in peak:
            peak[k] = max(peak[k], size[k])
    batch = list(carry)
    carry.clear()
    for pipe, _ in pipes.values():
        batch.extend((pipe, ev) for ev in pipe.tick(END_OF_TIME))
    feed(batch)
    t0 = time.process_time()
    merger.finish()
    merge_cpu += time.process_time() - t0
    for pipe, _ in pipes.values():
        for inc in pipe.correlator.incidents():
            final[inc.id] = inc

    # the merged grouping: union-find over the merge log (eviction never loses a union)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    for a, b in merger.union_log:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra
    per_domain = _from_incidents(list(final.values()))
    comp: dict[str, list[str]] = defaultdict(list)
    for iid in per_domain.groups:
        comp[find(iid)].append(iid)
    g = Grouping({}, {}, {}, {})
    crossed = 0
    for members in comp.values():
        first = min(members, key=lambda m: (per_domain.opened[m], m))
        g.groups[first] = [a for m in members for a in per_domain.groups[m]]
        g.opened[first] = per_domain.opened[first]
        if len(members) == 1:
            g.roots[first], g.cands[first] = per_domain.roots[first], per_domain.cands[first]
            continue
        doms = {final[m].domain for m in members}
        crossed += len(doms) > 1
        best = max((merger.eval_roots[m] for m in members if m in merger.eval_roots),
                   default=None, key=lambda x: x[0])
        if best is None:
            g.roots[first], g.cands[first] = per_domain.roots[first], per_domain.cands[first]
        else:
            g.roots[first] = best[1]
            g.cands[first] = [c for c, _ in best[2]]
    g.stats = {
        "domains_used": len(pipes),
        "per_domain_incidents": len(per_domain.groups),
        "incidents": len(g.groups),
        "cross_domain_incidents": crossed,
        "incident_events": n_events,
        "summaries": emitter.count,
        "summary_bytes_mean": emitter.bytes / max(1, emitter.count),
        "summary_bytes_max": emitter.max_bytes,
        "group_events": len(group_events),
        "span_controls": nonlocal_ctrl[0],
        "ghost_fanout": ghost_copies[1] / max(1, ghost_copies[0]),
        "merge_cpu_s": merge_cpu,
        "domain_cpu_s": domain_cpu,
        "merge_us_per_summary": 1e6 * merge_cpu / max(1, emitter.count),
        "merge_us_per_event": 1e6 * merge_cpu / max(1, n_events),
        "merger": dict(merger.stats),
        "peak_state": peak,
        "example": next((e.detail for e in group_events if e.type == "merged"), ""),
    }
    return g


# ------------------------------------------------------------------------------ scoring


def pair_scores(ref: Grouping, test: Grouping) -> tuple[float, float, float]:
    """Pairwise precision, recall, F1 of ``test`` against ``ref`` over the firing alerts
    ``ref`` placed (an alert ``test`` did not place is a singleton)."""
    ref_of = {a: i for i, ids in ref.groups.items() for a in ids}
    test_of = {a: i for i, ids in test.groups.items() for a in ids}
    cell: Counter[tuple[str, str]] = Counter()
    rsize: Counter[str] = Counter()
    tsize: Counter[str] = Counter()
    for a, r in ref_of.items():
        t = test_of.get(a, "single:" + a)
        cell[(r, t)] += 1
        rsize[r] += 1
        tsize[t] += 1

    def c2(n: int) -> int:
        return n * (n - 1) // 2

    tp = sum(c2(n) for n in cell.values())
    same_r = sum(c2(n) for n in rsize.values())
    same_t = sum(c2(n) for n in tsize.values())
    p = tp / same_t if same_t else 1.0
    r = tp / same_r if same_r else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def truth_scores(truth: dict[str, Any], g: Grouping) -> dict[str, float]:
    s = rca_score(truth, g.records())
    return {"ac1": s.ac1, "ac3": s.ac3, "pair_f1": s.pair_f1, "incidents": s.incidents}
