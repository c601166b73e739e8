"""Routing onto the internal by-domain topic: which partition, and the batch wire format.

Every alert of one correlation domain must reach the same correlate partition, whichever
worker normalized it, so the partition is a stable hash of the domain (CRC-32, the same in
every process and release), not the client library's key partitioner. Alerts travel in
batches, one message per target partition per ingest batch: the correlate side then pays the
stream's per-message cost once per batch instead of once per alert.
"""

from __future__ import annotations

import zlib

import msgspec

from pipeline.domain.schemas import Alert

KIND_HEADER = "stormwatch-kind"
KIND_ALERTS = b"alerts"
KIND_FEEDBACK = b"feedback"

#: alerts per routed message; keeps messages far below Kafka's default 1 MB limit
MAX_ALERTS_PER_MESSAGE = 1000


class AlertBatch(msgspec.Struct, array_like=True):
    """Normalized alerts for one by-domain partition, with when each reached ``alerts.raw``
    (epoch seconds, the source message timestamp) for the latency metric."""

    alerts: list[Alert]
    arrivals: list[float]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AlertBatch)


def domain_partition(domain: str, partitions: int) -> int:
    """The by-domain partition that owns ``domain``."""
    return zlib.crc32(domain.encode()) % partitions


def encode_batches(alerts: list[Alert], arrivals: list[float]) -> list[bytes]:
    """``alerts`` as one or more messages of at most :data:`MAX_ALERTS_PER_MESSAGE`."""
    step = MAX_ALERTS_PER_MESSAGE
    return [
        _encoder.encode(AlertBatch(alerts[i : i + step], arrivals[i : i + step]))
        for i in range(0, len(alerts), step)
    ]


def decode_batch(data: bytes) -> AlertBatch:
    return _decoder.decode(data)
