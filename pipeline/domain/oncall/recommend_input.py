"""What the responder recommender reads of an incident, and the features it learns from.

An :class:`IncidentSummary` is the part of an incident that says what broke: root cause and
ranked candidates, services, alert names, free text. :func:`features` turns it into a sparse
bag of named features (``rc:``, ``cand:``, ``svc:``, ``alert:``, ``tok:``) that the expertise
model crosses with each person (:mod:`.recommend_model`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pipeline.domain.schemas import Incident

TOKEN_RE = re.compile(r"[a-z][a-z0-9]{2,}")
MAX_TOKENS = 24
MAX_NAMES = 16
#: words too common in alert texts to say anything about the fault
_STOPWORDS = (
    "the and for with from that this are was were has have not but its into than then over "
    "under root cause causes candidate candidates service services alert alerts incident "
    "grouped because also more"
)
STOPWORDS = frozenset(_STOPWORDS.split())


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    """The incident as the recommender sees it; ``at`` is when responders are wanted (the
    incident's opening), ``named`` the people an escalation step names (available even off
    call)."""

    id: str
    at: datetime
    root_cause: str | None = None
    candidates: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    alert_names: tuple[str, ...] = ()
    text: str = ""
    named: tuple[str, ...] = ()

    @property
    def focus(self) -> tuple[str, ...]:
        """Services in order of blame: root cause, candidates, then the other services."""
        out: list[str] = []
        for s in (self.root_cause, *self.candidates, *self.services):
            if s and s not in out:
                out.append(s)
        return tuple(out)

    @classmethod
    def of(cls, incident: Incident, named: Iterable[str] = ()) -> IncidentSummary:
        """The summary of a (bounded) incident view."""
        names = _unique(c.name for c in incident.alert_counts) or _unique(
            a.name for a in incident.alerts
        )
        return cls(
            id=incident.id,
            at=incident.opened_at,
            root_cause=incident.root_cause,
            candidates=tuple(c.service for c in incident.root_cause_candidates[:MAX_NAMES]),
            services=tuple(incident.services[:MAX_NAMES]),
            alert_names=names[:MAX_NAMES],
            text=incident.explanation,
            named=tuple(named),
        )


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def tokens(text: str) -> list[str]:
    """Lower-case words of three or more characters, stop words out, first ``MAX_TOKENS``."""
    out = [t for t in dict.fromkeys(TOKEN_RE.findall(text.lower())) if t not in STOPWORDS]
    return out[:MAX_TOKENS]


def features(summary: IncidentSummary) -> dict[str, float]:
    """Sparse features of an incident: the root cause weighs most, candidates by rank,
    services, alert names and text tokens once each (values in (0, 1])."""
    x: dict[str, float] = {}
    if summary.root_cause:
        x[f"rc:{summary.root_cause}"] = 1.0
    for rank, c in enumerate(summary.candidates[:5]):
        x[f"cand:{c}"] = 1.0 / (rank + 1)
    for s in summary.services[:MAX_NAMES]:
        x[f"svc:{s}"] = 0.5
    for a in summary.alert_names[:MAX_NAMES]:
        x[f"alert:{a}"] = 1.0
    for t in tokens(summary.text):
        x[f"tok:{t}"] = 0.25
    return x
