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

from pipeline.domain.alignment import SourceMark
from pipeline.domain.schemas import Alert

KIND_HEADER = "stormwatch-kind"
KIND_ALERTS = b"alerts"
KIND_FEEDBACK = b"feedback"
#: on the merge topic: how far a by-domain partition has correlated (event time)
KIND_PROGRESS = b"progress"

#: alerts per routed message at most
MAX_ALERTS_PER_MESSAGE = 1000
#: bytes per routed message at most: under the producer's and Kafka's default 1 MB limit
MAX_MESSAGE_BYTES = 900_000


class AlertBatch(msgspec.Struct, array_like=True):
    """Normalized alerts for one by-domain partition, with when each reached ``alerts.raw``
    (epoch seconds, the source message timestamp) for the latency metric, and how far the
    sender has routed each of its input partitions (event-time alignment,
    :mod:`pipeline.domain.alignment`; a batch may carry marks and no alerts)."""

    alerts: list[Alert]
    arrivals: list[float]
    marks: list[SourceMark] = []


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AlertBatch)


def domain_partition(domain: str, partitions: int) -> int:
    """The by-domain partition that owns ``domain``."""
    return zlib.crc32(domain.encode()) % partitions


def encode_batches(
    alerts: list[Alert], arrivals: list[float], max_bytes: int = MAX_MESSAGE_BYTES
) -> list[bytes]:
    """``alerts`` as messages of at most :data:`MAX_ALERTS_PER_MESSAGE` alerts and
    ``max_bytes`` bytes (a chunk that encodes too large is halved until it fits; one alert
    larger than ``max_bytes`` travels alone, and the broker decides)."""
    out: list[bytes] = []
    step = MAX_ALERTS_PER_MESSAGE
    for i in range(0, len(alerts), step):
        _encode_into(out, alerts[i : i + step], arrivals[i : i + step], max_bytes)
    return out


def encode_marks(marks: list[SourceMark]) -> bytes:
    """A batch with no alerts that reports how far the sender has routed its inputs; sent
    after the alerts it accounts for, on the same partition."""
    return _encoder.encode(AlertBatch([], [], marks))


def _encode_into(
    out: list[bytes], alerts: list[Alert], arrivals: list[float], max_bytes: int
) -> None:
    data = _encoder.encode(AlertBatch(alerts, arrivals))
    if len(data) <= max_bytes or len(alerts) == 1:
        out.append(data)
        return
    half = len(alerts) // 2
    _encode_into(out, alerts[:half], arrivals[:half], max_bytes)
    _encode_into(out, alerts[half:], arrivals[half:], max_bytes)


def decode_batch(data: bytes) -> AlertBatch:
    return _decoder.decode(data)
