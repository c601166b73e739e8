"""Relating an alert to open incidents: the join indices and the relations they answer.

An alert may join an *indexed* incident (open and still able to take alerts) that is close
in event time (:meth:`JoinIndex.joinable`) and related to it, closest first:

* same service (strength 0), or a dependency path within ``hops`` either way (strength =
  hops);
* a shared direct dependency (2.5);
* the blast radius of the incident's root cause (``hops + 1``);
* only when nothing closer is joinable, within ``undirected_burst_s`` of the incident's first
  alert: a path of ``d <= hops`` ignoring edge direction (``hops + 1.5 + d/10``);
* only when nothing closer is joinable: a service that keeps starting to alert together
  with the alert's service (:mod:`pipeline.domain.cooccurrence`) began alerting in the
  incident within the learner's ``window_s`` of the alert (``hops + 1.8``);
* a shared value of one of the ``link_labels`` (``hops + 2``): of the first ``max_labels``
  values the incident saw;
* only when nothing else relates it and it carries no link label (labels are the better
  evidence then), for a service the topology lists without any edge (missing knowledge, not
  evidence of no relation), or towards an incident of such services only: the incident that
  alerted most recently, if it did within ``undirected_burst_s`` (``hops + 2.5``): an alert
  in the middle of an ongoing burst most likely belongs to it.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.domain.cooccurrence import CoOccurrence
from pipeline.domain.correlate.settings import CorrelationSettings, span_end
from pipeline.domain.correlate.state import IncidentState
from pipeline.domain.explain import join_reason
from pipeline.domain.graphs import GraphIndex
from pipeline.domain.schemas import Alert

#: (strength: lower is closer, incident id, relation, via) where relation is one of "graph",
#: "shared-dependency", "blast-radius", "near", "co-occurrence", "label", "burst" and via the
#: service or label it is related through.
Match = tuple[float, str, str, str]


class JoinIndex:
    """Indices of the indexed incidents by service, direct dependency and link label."""

    __slots__ = (
        "_active",
        "_dep_index",
        "_label_index",
        "_link_labels",
        "_states",
        "_svc_index",
        "cooc",
        "graph",
        "now",
        "settings",
        "unindexed_at",
    )

    def __init__(
        self,
        graph: GraphIndex,
        settings: CorrelationSettings,
        states: Mapping[str, IncidentState],
        cooc: CoOccurrence | None = None,
    ) -> None:
        self.graph = graph
        self.cooc = cooc
        self.settings = settings
        self._states = states  # every tracked incident, by id (the correlator's book)
        self._link_labels = settings.link_labels
        self._svc_index: dict[str, set[str]] = {}  # service -> indexed incident ids
        self._label_index: dict[str, set[str]] = {}  # "k=v" -> indexed incident ids
        self._dep_index: dict[str, set[str]] = {}  # direct dependency -> indexed incident ids
        self._active: set[str] = set()  # indexed incident ids
        self.now = float("-inf")  # the correlator's event-time watermark
        #: tracked incident -> watermark when it left the indices (what the merge stage's
        #: summaries call ``index_end``; not checkpointed)
        self.unindexed_at: dict[str, float] = {}

    # ------------------------------------------------------------------ queries

    def matches(self, alert: Alert, service: str, t: float) -> list[Match]:
        """Indexed incidents related to the alert and joinable at ``t``, in no order."""
        s = self.settings
        found: dict[str, Match] = {}
        svc_index = self._svc_index
        states = self._states

        def add(iid: str, strength: float, relation: str, via: str) -> None:
            cur = found.get(iid)
            if cur is None or strength < cur[0]:
                found[iid] = (strength, iid, relation, via)

        for iid in svc_index.get(service, ()):
            add(iid, 0.0, "graph", service)
        g = self.graph
        if g.known(service):
            up = g.up(service)
            down = g.down(service)
            # look up the neighbourhood in the service index, or scan the open incidents'
            # services, whichever is smaller
            if len(up) + len(down) <= self.scan_cost(len(up) + len(down)):
                for nb in (down, up):
                    for x, h in nb.items():
                        ids = svc_index.get(x)
                        if ids:
                            for iid in ids:
                                cur = found.get(iid)
                                if cur is None or h < cur[0]:
                                    found[iid] = (h, iid, "graph", x)
            else:
                for iid in self._active:
                    for x in states[iid].evidence:
                        hx = down.get(x)
                        if hx is None:
                            hx = up.get(x)
                        if hx is not None:
                            add(iid, hx, "graph", x)
            if s.shared_dependency:
                for d in g.deps1(service):
                    for iid in self._dep_index.get(d, ()):
                        add(iid, 2.0 + 0.5, "shared-dependency", d)
            if s.blast_radius:
                for iid in self._active:
                    if iid in found:
                        continue
                    root = states[iid].inc.root_cause
                    if root and g.known(root) and service in g.blast_radius(root):
                        add(iid, s.hops + 1.0, "blast-radius", root)
        lo_first = t - s.undirected_burst_s
        if (
            not any(self.joinable(states[iid], t) for iid in found)
            and s.undirected_burst_s > 0
            and g.known(service)
            and any(states[iid].first_t >= lo_first for iid in self._active)
        ):
            # nothing closer: a service near it ignoring edge direction, in the same burst
            for x, h in g.near(service).items():
                for iid in svc_index.get(x, ()):
                    if states[iid].first_t >= lo_first:
                        add(iid, s.hops + 1.5 + h / 10, "near", x)
        cooc = self.cooc
        if cooc is not None and not any(self.joinable(states[iid], t) for iid in found):
            # nothing closer: a service that keeps starting to alert with this one began
            # alerting in the incident just now (a call the topology misses, probably)
            w = cooc.s.window_s
            for p in cooc.partners(service):
                for iid in svc_index.get(p, ()):
                    if abs(states[iid].first_seen.get(p, -w - t) - t) <= w:
                        add(iid, s.hops + 1.8, "co-occurrence", p)
        if alert.labels:
            for key in self._link_labels:
                v = alert.labels.get(key)
                if v:
                    kv = f"{key}={v}"
                    for iid in self._label_index.get(kv, ()):
                        add(iid, s.hops + 2.0, "label", kv)
        out = [m for m in found.values() if self.joinable(states[m[1]], t)]
        if not out and s.undirected_burst_s > 0 and not self._has_link_label(alert):
            # the graph cannot place this service, or an ongoing incident, and no label
            # says where it belongs: join the burst going on right now
            here = g.edgeless(service)
            best: IncidentState | None = None
            for iid in self._active:
                st = states[iid]
                if (
                    abs(t - st.last_t) <= s.undirected_burst_s
                    and (best is None or (st.last_t, iid) > (best.last_t, best.inc.id))
                    and self.joinable(st, t)
                    and (here or all(g.edgeless(x) for x in st.evidence))
                ):
                    best = st
            if best is not None:
                out.append((s.hops + 2.5, best.inc.id, "burst", service))
        return out

    def _has_link_label(self, alert: Alert) -> bool:
        labels = alert.labels
        return bool(labels) and any(labels.get(k) for k in self._link_labels)

    def sort_best_first(self, matches: list[Match]) -> None:
        """Closest relation first, then the incident with the latest alert, then by id."""
        states = self._states
        matches.sort(key=lambda m: (m[0], -states[m[1]].last_t, m[1]))

    def reason(self, match: Match, service: str, since_first_s: float) -> str:
        """Why an alert on ``service`` joins through ``match`` (``since_first_s`` after the
        incident's first alert), for the alert's ``reason``."""
        _, _, kind, via = match
        if kind == "graph" or kind == "near":
            relation, hops, via = self.graph.relation(service, via)
        elif kind == "burst":
            return (
                f"no known calls relate {service} to this incident's services (the topology "
                f"lists no edges for one side); it alerted {since_first_s:.0f} s after the "
                "first alert while the incident's alerts were still coming in"
            )
        elif kind == "co-occurrence" and self.cooc is not None:
            n = self.cooc.count(service, via)
            return (
                f"{service} and {via} started alerting together {n} times so far (learned; "
                f"the topology relates them by no path), same burst, "
                f"{since_first_s:.0f} s after the first alert"
            )
        else:
            relation, hops = kind, 2 if kind == "shared-dependency" else 0
        return join_reason(relation, hops, via, service, since_first_s)

    def joinable(self, st: IncidentState, t: float) -> bool:
        """Is an alert at ``t`` close enough in time to join ``st``?"""
        s = self.settings
        return (
            st.last_t >= t - s.join_gap_s
            and t >= st.first_t - s.join_gap_s - s.allowed_lateness_s
            and not self.too_old(st, t)
        )

    def too_old(self, st: IncidentState, t: float) -> bool:
        """Is ``st`` past ``max_span_s`` at ``t`` (it takes no new series then)? Counted
        from its cross-domain group's first alert when the merge stage said so."""
        span = self.settings.max_span_s
        if span <= 0:
            return False
        start = st.span_start  # (span_start(st), inlined: this is the hot path)
        if start is None or start > st.first_t:
            start = st.first_t
        return t > span_end(start, span)

    def scan_cost(self, limit: int) -> int:
        """Services of the indexed incidents, counted up to ``limit``."""
        total = 0
        states = self._states
        for iid in self._active:
            total += len(states[iid].evidence)
            if total >= limit:
                break
        return total

    def forget(self, incident_id: str) -> None:
        """The incident is no longer tracked (evicted, merged away)."""
        self.unindexed_at.pop(incident_id, None)

    def is_indexed(self, st: IncidentState) -> bool:
        return st.indexed and st.inc.id in self._active

    # ------------------------------------------------------------------ updates

    def index(self, st: IncidentState) -> None:
        """Index ``st`` under all its services and labels (no-op if it already is)."""
        if st.indexed and st.inc.id in self._active:
            return
        st.indexed = True
        self.unindexed_at.pop(st.inc.id, None)
        self._active.add(st.inc.id)
        for svc in st.evidence:
            self.index_service(st, svc)
        for kv in st.labels:
            self.index_label(st, kv)

    def index_service(self, st: IncidentState, service: str) -> None:
        """Index ``st`` under ``service`` and that service's direct dependencies."""
        iid = st.inc.id
        ids = self._svc_index.get(service)
        if ids is None:
            self._svc_index[service] = {iid}
        elif iid not in ids:
            ids.add(iid)
        else:
            return
        if self.settings.shared_dependency:
            dep_index = self._dep_index
            for d in self.graph.deps1(service):
                dids = dep_index.get(d)
                if dids is None:
                    dep_index[d] = {iid}
                else:
                    dids.add(iid)

    def add_dependency(self, caller: str, callee: str) -> None:
        """The graph just learned ``caller -> callee``: incidents indexed under ``caller``
        now share ``callee`` as a direct dependency too."""
        if not self.settings.shared_dependency:
            return
        ids = self._svc_index.get(caller)
        if ids:
            self._dep_index.setdefault(callee, set()).update(ids)

    def index_label(self, st: IncidentState, kv: str) -> None:
        """Index ``st`` under the link label ``kv`` (``"key=value"``)."""
        self._label_index.setdefault(kv, set()).add(st.inc.id)

    def index_labels(self, st: IncidentState, labels: Mapping[str, str]) -> None:
        """Record and index the alert ``labels`` that are link labels: the first
        ``max_labels`` values an incident sees (0: all); later ones relate it to nothing."""
        limit = self.settings.max_labels
        for key in self._link_labels:
            v = labels.get(key)
            if v:
                kv = f"{key}={v}"
                if kv not in st.labels:
                    if 0 < limit <= len(st.labels):
                        continue
                    st.labels.append(kv)
                self.index_label(st, kv)

    def unindex(self, st: IncidentState) -> None:
        """Take ``st`` out of every index: it can take no new alerts."""
        if not st.indexed:
            return
        st.indexed = False
        iid = st.inc.id
        self.unindexed_at[iid] = self.now
        self._active.discard(iid)
        for svc in st.evidence:
            _discard(self._svc_index, svc, iid)
            for d in self.graph.deps1(svc):
                _discard(self._dep_index, d, iid)
        for kv in st.labels:
            _discard(self._label_index, kv, iid)


def _discard(index: dict[str, set[str]], key: str, iid: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(iid)
        if not ids:
            del index[key]
