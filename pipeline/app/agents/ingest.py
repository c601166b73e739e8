"""Ingest agent: ``alerts.raw`` -> normalize (bad input to the DLQ) -> by-domain topic.

Messages are normalized with their headers (binary-mode CloudEvents carry their attributes
in ``ce_`` headers) and the configured generic mapping.

Each batch is normalized into canonical alerts, which are routed as one batch message per
by-domain partition of their correlation domains; ingest pauses while too many routed alerts
wait for correlation in this process (:mod:`pipeline.app.backpressure`).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from faust.types import EventT

from pipeline.app.backpressure import IngestPause
from pipeline.app.dead_letters import DeadLetters
from pipeline.app.liveness import Liveness
from pipeline.app.metrics import Metrics
from pipeline.app.router import DomainRouter, Routed
from pipeline.app.source_marks import SourceMarks
from pipeline.app.steps import headers
from pipeline.domain.normalize import GenericMapping, NormalizeError, normalize_message


class IngestAgent:
    def __init__(
        self,
        topic: str,
        router: DomainRouter,
        dead_letters: DeadLetters,
        pause: IngestPause,
        liveness: Liveness,
        metrics: Metrics,
        batch_size: int,
        batch_timeout_s: float,
        marks: SourceMarks | None = None,
        generic: GenericMapping | None = None,
    ) -> None:
        self.topic = topic
        self.router = router
        self.dead_letters = dead_letters
        self.pause = pause
        self.liveness = liveness
        self.metrics = metrics
        self.batch_size = batch_size
        self.batch_timeout_s = batch_timeout_s
        #: how far each raw partition is routed (None: no event-time alignment)
        self.marks = marks
        #: the configured generic JSON mapping (None: payloads of no built-in format fail)
        self.generic = generic

    async def run(self, stream: Any) -> None:
        async for events in stream.take_events(self.batch_size, within=self.batch_timeout_s):
            await self.handle(events)
            self.liveness.processed(events)
            self.pause.pause_if_ahead()

    async def handle(self, events: list[EventT]) -> None:
        started = time.perf_counter()
        self.metrics.messages.labels(self.topic).inc(len(events))
        routed: Routed = {}
        ok = 0
        sources: Counter[str] = Counter()
        for event in events:
            try:
                hdrs = headers(event) if event.message.headers else None
                alerts = normalize_message(event.value, hdrs, generic=self.generic)
            except NormalizeError as exc:
                await self.dead_letters.send(event, "normalize", exc.error, str(exc))
                alerts = []
            arrival = event.message.timestamp
            for alert in alerts:
                self.router.add(routed, self.router.partition_of(alert), alert, arrival)
                sources[alert.source] += 1
                ok += 1
            if self.marks is not None:
                self.marks.note(event.message.partition, event.message.offset, alerts)
        marks = None
        if self.marks is not None:
            current = self.marks.current()
            marks = self.marks.due(current)
            self.marks.align(current)
        await self.router.send_alerts(routed, marks)
        self.metrics.stage_items.labels("normalize", "ok").inc(ok)
        self.metrics.alerts_in(sources)
        self.metrics.stage_seconds.labels("normalize").observe(time.perf_counter() - started)
