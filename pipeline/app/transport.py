"""Faust's aiokafka transport with the fetch long-poll wait made configurable.

faust-streaming hard-codes ``fetch_max_wait_ms=1500`` for the worker consumer. A Kafka broker
answers a fetch as soon as ``fetch_min_bytes`` (1) are available, so the wait only bounds idle
polls; some Kafka-protocol brokers (Tansu, measured: a fetch returns after about half the
wait even when data is there) hold every fetch for the wait, which puts a second of latency
on each hop. ``stormwatch://host:port`` selects this transport; the wait comes from
``worker.fetch_max_wait_ms``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiokafka
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

SCHEME = "stormwatch"


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start() when it builds its Fetcher
        consumer._fetch_max_wait_ms = TunedTransport.fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class TunedTransport(faust_aiokafka.Transport):
    """aiokafka transport whose worker consumer uses :attr:`fetch_max_wait_ms`."""

    Consumer = _Consumer
    fetch_max_wait_ms: ClassVar[int] = 1500


def use_tuned_transport(fetch_max_wait_ms: int) -> str:
    """Register the transport under :data:`SCHEME`; returns the scheme for broker URLs."""
    TunedTransport.fetch_max_wait_ms = fetch_max_wait_ms
    TRANSPORTS.aliases[SCHEME] = f"{__name__}:TunedTransport"
    return SCHEME


def highwater(consumer: Any, topic: str, partition: int) -> int | None:
    """The partition's high-water mark as the consumer last fetched it (None: not yet)."""
    try:
        hw = consumer.highwater(TP(topic, partition))
    except Exception:  # not fetched yet
        return None
    return int(hw) if hw is not None else None
