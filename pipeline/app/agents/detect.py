"""Metrics agent: ``metrics.raw`` samples -> online anomaly detectors -> anomaly alerts routed
to the by-domain topic like any other alert (bad samples to the DLQ)."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from faust.types import EventT

from pipeline.app.dead_letters import DeadLetters
from pipeline.app.liveness import Liveness
from pipeline.app.metrics import Metrics
from pipeline.app.router import DomainRouter, Routed
from pipeline.domain.detectors import DetectorBank
from pipeline.domain.schemas import MetricSample

_sample_decoder = msgspec.json.Decoder(MetricSample)


class DetectAgent:
    def __init__(
        self,
        topic: str,
        detectors: DetectorBank,
        router: DomainRouter,
        dead_letters: DeadLetters,
        liveness: Liveness,
        metrics: Metrics,
        batch_size: int,
        batch_timeout_s: float,
    ) -> None:
        self.topic = topic
        self.detectors = detectors
        self.router = router
        self.dead_letters = dead_letters
        self.liveness = liveness
        self.metrics = metrics
        self.batch_size = batch_size
        self.batch_timeout_s = batch_timeout_s

    async def run(self, stream: Any) -> None:
        async for events in stream.take_events(self.batch_size, within=self.batch_timeout_s):
            await self.handle(events)
            self.liveness.processed(events)

    async def handle(self, events: list[EventT]) -> None:
        self.metrics.messages.labels(self.topic).inc(len(events))
        started = time.perf_counter()
        routed: Routed = {}
        for event in events:
            try:
                sample = _sample_decoder.decode(event.value)
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                await self.dead_letters.send(event, "detect", "invalid", str(exc))
                continue
            score, alert = self.detectors.observe(sample)
            self.metrics.anomaly_score.observe(score)
            if alert is not None:
                self.metrics.anomalies.inc()
                self.metrics.alerts_in({alert.source: 1})
                self.router.add(
                    routed, self.router.partition_of(alert), alert, event.message.timestamp
                )
        await self.router.send_alerts(routed)
        self.metrics.stage_seconds.labels("detect").observe(time.perf_counter() - started)
