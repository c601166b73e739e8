"""Which escalation pages of an incident are already on ``incidents``: read back from the
topic before pages left in an outbox by a worker that died are published again.

A worker that died after the broker acknowledged its pages but before it removed them from
the outbox leaves pages that were sent; its successor reads the incident's partition of
``incidents`` backwards from the end, down to messages older than the outbox, and publishes
only the pages it does not find. Only the recovery path reads (an outbox whose lease ran out),
never a normal page.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, TopicPartition

from pipeline.domain.schemas import IncidentEvent

_decoder = msgspec.json.Decoder(IncidentEvent)
#: a page's identity: (triggered, cycle, step)
PageKey = tuple[int, int, int]
#: messages read per backwards chunk at first (doubling), and at most in all
FIRST_CHUNK = 256
MAX_SCAN = 1_000_000
TIMEOUT_S = 10.0


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the publisher (librdkafka's ``murmur2_random``, as Java clients)
    puts a keyed message in."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class PageCheck:
    def __init__(self, client_config: dict[str, Any], topic: str) -> None:
        self.config = {
            **client_config,
            "group.id": f"stormwatch-page-check-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 3,
        }
        self.topic = topic

    def published(self, incident: str, since: float) -> set[PageKey]:
        """The pages of ``incident`` on the topic among messages produced at ``since``
        (epoch seconds) or later; blocking (run it in a thread)."""
        consumer = Consumer(self.config)
        try:
            meta = consumer.list_topics(self.topic, timeout=TIMEOUT_S).topics[self.topic]
            key = incident.encode()
            tp = TopicPartition(self.topic, partition_of(key, len(meta.partitions)))
            low, high = self._watermarks(consumer, tp)
            found: set[PageKey] = set()
            end, chunk = high, FIRST_CHUNK
            while end > low and high - end < MAX_SCAN:
                start = max(low, end - chunk)
                oldest = self._read(consumer, tp, start, end, key, found)
                if oldest is not None and oldest < since:
                    break
                end, chunk = start, chunk * 2
            return found
        finally:
            consumer.close()

    @staticmethod
    def _watermarks(consumer: Consumer, tp: TopicPartition) -> tuple[int, int]:
        """The partition's low and high watermarks. The high one as a fetch reports it too:
        Tansu 0.6 answers ListOffsets (latest) with 1 for a partition of one record batch."""
        low, high = consumer.get_watermark_offsets(tp, timeout=TIMEOUT_S)
        if high <= low:  # empty
            return low, high
        consumer.assign([TopicPartition(tp.topic, tp.partition, low)])
        if consumer.poll(TIMEOUT_S) is not None:
            fetched = consumer.get_watermark_offsets(tp, cached=True)
            if fetched is not None:
                high = max(high, fetched[1])
        return low, high

    def _read(
        self,
        consumer: Consumer,
        tp: TopicPartition,
        start: int,
        end: int,
        key: bytes,
        found: set[PageKey],
    ) -> float | None:
        """Collect the incident's pages at offsets [start, end); returns the oldest message
        timestamp seen (None: none carried one)."""
        consumer.assign([TopicPartition(tp.topic, tp.partition, start)])
        oldest: float | None = None
        offset = start
        while offset < end:
            msg = consumer.poll(TIMEOUT_S)
            if msg is None:  # nothing more to read (offsets with no message: gaps)
                break
            at, value = msg.offset(), msg.value()
            if msg.error() or at is None:
                continue
            offset = at + 1
            kind, ts = msg.timestamp()
            if kind and ts >= 0:
                oldest = ts / 1000 if oldest is None else min(oldest, ts / 1000)
            if msg.key() != key or at >= end or value is None:
                continue
            try:
                ev = _decoder.decode(value)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            if ev.escalation is not None:
                esc = ev.escalation
                found.add((esc.triggered, esc.cycle, esc.step))
        return oldest
