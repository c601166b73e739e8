"""Which runbooks fit an incident, judged from the incident the worker publishes.

:class:`IncidentFacts` is what matching and the guards read from an incident: its root
cause with the ranking's score and margin, the member alert names, the severity, and the
member alerts' label values: those the caller has, else the incident's ``common_labels``
(the pairs every alert of its root cause carried, which the worker publishes).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

import msgspec

from pipeline.domain.remediation.runbook import Runbook
from pipeline.domain.schemas import (
    Incident,
    RunbookLink,
    RunbookRef,
    RunbookStepRef,
    Severity,
)
from pipeline.domain.topology import Topology


class IncidentFacts(msgspec.Struct, kw_only=True, frozen=True):
    incident_id: str
    root_cause: str | None
    #: ranking score of the root cause (0 when it is not among the candidates)
    score: float = 0.0
    #: root cause's score minus the next candidate's (its score when alone)
    margin: float = 0.0
    severity: Severity = Severity.warning
    alert_names: frozenset[str] = frozenset()
    #: label key -> values seen on member alerts
    labels: dict[str, list[str]] = {}
    resolved: bool = False
    firing: int = 0


def facts_of(inc: Incident, labels: Mapping[str, Iterable[str]] | None = None) -> IncidentFacts:
    """The facts of a published incident: ``labels`` from its member alerts when the caller
    has them, else the labels every alert of its root cause carried (``common_labels``)."""
    if labels is None:
        labels = {k: [v] for k, v in inc.common_labels.items()}
    cands = inc.root_cause_candidates
    score = next((c.score for c in cands if c.service == inc.root_cause), 0.0)
    others = [c.score for c in cands if c.service != inc.root_cause]
    margin = score - max(others) if others else score
    # the counts cover every member (also those a big incident no longer lists); the listed
    # alerts only when an incident carries no counts
    names = {c.name for c in inc.alert_counts} or {a.name for a in inc.alerts}
    firing = sum(c.firing for c in inc.alert_counts) or sum(
        1 for a in inc.alerts if a.status == "firing"
    )
    return IncidentFacts(
        incident_id=inc.id,
        root_cause=inc.root_cause,
        score=score,
        margin=margin,
        severity=inc.severity,
        alert_names=frozenset(names),
        labels={k: sorted(set(v)) for k, v in (labels or {}).items()},
        resolved=inc.status == "resolved",
        firing=firing,
    )


def matches(rb: Runbook, facts: IncidentFacts, topology: Topology | None = None) -> bool:
    """Whether every criterion of ``rb.match`` holds for the incident."""
    m = rb.match
    if m.services and facts.root_cause not in m.services:
        return False
    if m.teams:
        team = topology.team(facts.root_cause) if topology and facts.root_cause else None
        if team not in m.teams:
            return False
    if m.alert_names and not any(
        fnmatchcase(name, pat) for name in facts.alert_names for pat in m.alert_names
    ):
        return False
    if any(v not in facts.labels.get(k, []) for k, v in m.labels.items()):
        return False
    return not m.severity or facts.severity in m.severity


def matching(
    runbooks: Iterable[Runbook], facts: IncidentFacts, topology: Topology | None = None
) -> list[Runbook]:
    """The runbooks that fit, in priority order (the first one is the incident's)."""
    return sorted(
        (rb for rb in runbooks if matches(rb, facts, topology)), key=lambda r: (r.priority, r.id)
    )


def reference(rb: Runbook) -> RunbookRef:
    """What incident events carry of a runbook: id, title, mode, steps and links."""
    return RunbookRef(
        id=rb.id,
        title=rb.title,
        mode=str(rb.mode),
        description=rb.description.strip(),
        steps=[
            RunbookStepRef(id=s.id, action=str(s.action), title=s.title)
            for s in [*rb.diagnostics, *rb.steps]
        ],
        links=[RunbookLink(title=link.title, url=link.url) for link in rb.links],
    )


#: incidents whose last match :class:`RunbookIndex` remembers (the oldest are forgotten)
MATCH_MEMORY = 4096


class RunbookIndex:
    """The runbook of an incident, for the annotate stage (pure, no I/O).

    Every event of an incident asks again, and a storm incident has thousands of (service,
    alert name) counts: the answer is remembered per incident until something a runbook
    matches on changes (root cause, severity, the (service, alert name) pairs it counts, its
    common labels)."""

    def __init__(self, runbooks: Iterable[Runbook], topology: Topology | None = None) -> None:
        self.runbooks = list(runbooks)
        self.topology = topology
        self._refs = {rb.id: reference(rb) for rb in self.runbooks}
        self._memo: OrderedDict[str, tuple[tuple[object, ...], RunbookRef | None]] = OrderedDict()

    def __call__(self, inc: Incident) -> RunbookRef | None:
        # (alert names come from the counts, from the listed alerts only without counts)
        key = (
            inc.root_cause,
            inc.severity,
            len(inc.alert_counts) or -len(inc.alerts),
            tuple(inc.common_labels.items()),
        )
        known = self._memo.get(inc.id)
        if known is not None and known[0] == key:
            self._memo.move_to_end(inc.id)
            return known[1]
        found = matching(self.runbooks, facts_of(inc), self.topology)
        ref = self._refs[found[0].id] if found else None
        self._memo[inc.id] = (key, ref)
        self._memo.move_to_end(inc.id)
        if len(self._memo) > MATCH_MEMORY:
            self._memo.popitem(last=False)
        return ref
