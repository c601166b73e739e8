"""Per-domain incident summaries to the merge stage, when the topology is split into domains.

A per-domain correlator does not publish on ``incidents``: the merge stage is its only writer
(:mod:`pipeline.app.agents.merge`). Each step's events become one
:class:`~pipeline.domain.merge.Summary` per changed incident (derived per partition by a
:class:`~pipeline.domain.merge.SummaryDeriver`), its events cut to the bounded view an
``incidents`` event would be, sent to the internal merge topic keyed by incident id.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from pipeline.app.publisher import Publisher
from pipeline.app.routing import KIND_HEADER, KIND_PROGRESS
from pipeline.app.steps import Step
from pipeline.config import Settings
from pipeline.domain.event_view import EventLimits, encode_event_and_record
from pipeline.domain.merge import Summary, SummaryDeriver
from pipeline.domain.schemas import IncidentEvent


class Progress(msgspec.Struct, array_like=True):
    partition: int
    event_time: float
    #: wall time (epoch seconds) the mark was sent; 0.0 from a worker older than the field
    sent: float = 0.0


progress_encoder = msgspec.msgpack.Encoder()
progress_decoder = msgspec.msgpack.Decoder(Progress)
summary_encoder = msgspec.msgpack.Encoder()
summary_decoder = msgspec.msgpack.Decoder(Summary)
_event_decoder = msgspec.json.Decoder(IncidentEvent)


class SummarySending:
    def __init__(self, settings: Settings, topic: str, limits: EventLimits) -> None:
        self.settings = settings
        self.topic_name = topic
        self.limits = limits
        self.derivers: dict[int, SummaryDeriver] = {}
        #: the merge topic's producer (opened on first use; tests put a fake here)
        self.topic: Any = None

    def derive(self, step: Step, records: dict[str, bytes]) -> list[Summary]:
        """The step's summaries, their events cut to the bounded view published on
        ``incidents``; each incident's record (the same view) goes into ``records``."""
        deriver = self.derivers.get(step.partition)
        if deriver is None:
            deriver = self.derivers[step.partition] = SummaryDeriver(step.partition)
        out = []
        for sm in deriver.derive(step.pipe, step.events):
            events = []
            for ev in sm.events:
                value, records[ev.incident.id] = encode_event_and_record(ev, self.limits)
                events.append(_event_decoder.decode(value))
            out.append(msgspec.structs.replace(sm, events=events))
        return out

    async def send(self, summary: Summary) -> Any:
        """Send one summary; returns the delivery future."""
        self._open()
        return await self.topic.send(key=summary.id.encode(), value=summary_encoder.encode(summary))

    async def send_progress(self, partition: int, event_time: float) -> Any:
        """After a step's summaries: the partition will release no alerts older than
        ``event_time`` any more (:meth:`EventTimeAligner.progress`)."""
        self._open()
        return await self.topic.send(
            key=str(partition).encode(),
            value=progress_encoder.encode(Progress(partition, event_time, time.time())),
            headers=[(KIND_HEADER, KIND_PROGRESS)],
        )

    def _open(self) -> None:
        if self.topic is None:
            conf = self.settings.kafka.confluent_config()
            self.topic = Publisher(conf, self.topic_name, self.settings.topics.max_message_bytes)

    def forget(self, partition: int) -> None:
        self.derivers.pop(partition, None)

    def close(self) -> None:
        if isinstance(self.topic, Publisher):
            self.topic.close()
