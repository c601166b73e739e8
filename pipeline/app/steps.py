"""A correlate step: one partition's share of a batch of by-domain messages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from faust.types import EventT

from pipeline.app.routing import KIND_ALERTS, KIND_FEEDBACK, KIND_HEADER, decode_batch
from pipeline.domain.alignment import SourceMark
from pipeline.domain.correlate.journal import MembershipOp
from pipeline.domain.pipeline import AlertPipeline
from pipeline.domain.schemas import Alert, IncidentEvent
from pipeline.domain.throttle import UpdateThrottle

#: header of single-alert messages from workers before batch routing: arrival time
ARRIVAL_HEADER = "stormwatch-arrival"

_alert_decoder = msgspec.json.Decoder(Alert)


@dataclass
class Step:
    """One partition's share of a correlate step (or of a lifecycle tick, or hand-over)."""

    partition: int
    pipe: AlertPipeline
    alerts: list[Alert] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    events: list[IncidentEvent] = field(default_factory=list)
    dedup_states: dict[str, str] = field(default_factory=dict)
    #: the partition's throttle when it is no longer registered (hand-over)
    throttle: UpdateThrottle | None = None
    #: highest by-domain offset among the step's messages (-1: none)
    offset: int = -1
    #: routed feedback messages, applied at the start of the step
    feedback: list[bytes] = field(default_factory=list)
    #: merge-stage controls (read from the partition's control stream), applied at the
    #: start of the step after the feedback, and the stream id of the last one
    controls: list[bytes] = field(default_factory=list)
    controls_upto: str | None = None
    #: membership changes the step made, in order
    membership: list[MembershipOp] = field(default_factory=list)
    #: how far the senders have routed their inputs (event-time alignment), in message order
    marks: list[SourceMark] = field(default_factory=list)


def headers(event: EventT) -> dict[str, bytes]:
    raw: Any = event.message.headers or []
    items: Iterable[tuple[str, bytes]] = raw.items() if isinstance(raw, dict) else raw
    return dict(items)


def decode_step(partition: int, pipe: AlertPipeline, applied: int, events: list[EventT]) -> Step:
    """The alerts of one partition's messages, in event-time order, and its feedback (not
    yet applied). Messages at or below ``applied`` (the offset the partition's state already
    holds: re-consumed after a crash) are skipped."""
    step = Step(partition, pipe)
    for event in events:
        offset = event.message.offset
        if offset <= applied:
            continue
        step.offset = max(step.offset, offset)
        hdrs = headers(event)
        kind = hdrs.get(KIND_HEADER)
        if kind == KIND_ALERTS:
            batch = decode_batch(event.value)
            step.alerts.extend(batch.alerts)
            step.arrivals.extend(batch.arrivals)
            step.marks.extend(batch.marks)
        elif kind == KIND_FEEDBACK:
            step.feedback.append(event.value)
        else:  # one JSON alert per message, as workers before batch routing sent them
            step.alerts.append(_alert_decoder.decode(event.value))
            if ARRIVAL_HEADER in hdrs:
                step.arrivals.append(float(hdrs[ARRIVAL_HEADER]))
    # unkeyed producers spread one series over partitions: restore event order per batch
    if len(step.arrivals) == len(step.alerts):
        pairs = sorted(zip(step.alerts, step.arrivals, strict=True), key=_pair_time)
        step.alerts = [a for a, _ in pairs]
        step.arrivals = [t for _, t in pairs]
    else:
        step.alerts.sort(key=_event_time)
    return step


def _event_time(alert: Alert) -> float:
    return alert.epoch


def _pair_time(pair: tuple[Alert, float]) -> float:
    return pair[0].epoch
