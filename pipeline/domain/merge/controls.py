"""Control messages from the merge stage to the per-domain correlators.

They travel on the by-domain topic to the partition of the target domain (like feedback)
and are applied between steps with :func:`apply_control`; see
:mod:`pipeline.domain.correlate.controls` for what they do.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from pipeline.domain.pipeline import AlertPipeline, coalesce
from pipeline.domain.schemas import IncidentEvent


class ControlKind(StrEnum):
    span_start = "span_start"
    split_reopened = "split_reopened"


class Control(msgspec.Struct, kw_only=True, frozen=True):
    """``kind`` for per-domain ``incident`` (of ``domain``, on by-domain ``partition``) at
    event time ``t``."""

    kind: ControlKind
    incident: str
    domain: str
    partition: int
    t: float


def apply_control(pipe: AlertPipeline, control: Control) -> list[IncidentEvent]:
    """Apply ``control`` to the correlator of ``pipe``; returns the incident events it
    caused (a split reopen: the reopened incident resolved again, the new one opened)."""
    corr = pipe.correlator
    if control.kind is ControlKind.span_start:
        corr.set_span_start(control.incident, control.t)
        return []
    events = corr.split_reopened(control.incident, control.t)
    if not events or pipe.scorer is None:
        return events
    # paging annotation as for any other change (AlertPipeline has no public hook for it yet)
    return pipe._annotate(coalesce(events))
