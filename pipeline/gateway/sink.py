"""Producing a request's records and waiting until the broker acknowledged every one.

librdkafka sends from its own threads; its delivery reports settle asyncio futures on the
event loop (:class:`pipeline.app.publisher.Publisher`), so waiting never blocks the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import structlog
from confluent_kafka import KafkaError, KafkaException

from pipeline.app.publisher import Publisher, Rejected
from pipeline.gateway.records import Record

log = structlog.get_logger("stormwatch.gateway")


class Sink(Protocol):
    async def send(
        self,
        *,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        topic: str | None = None,
    ) -> asyncio.Future[None]:
        """Queue a message; the future settles when the broker acknowledged it (or not)."""
        ...


class DeliveryFailed(Exception):
    """Not every record of a request was acknowledged; ``str(exc)`` says why."""

    def __init__(self, reason: str, *, transient: bool, too_large: bool = False) -> None:
        super().__init__(reason)
        #: the broker may take it later (503 and Retry-After) rather than never
        self.transient = transient
        self.too_large = too_large


async def deliver(sink: Sink, topic: str, records: Sequence[Record], timeout_s: float) -> None:
    """Produce ``records`` to ``topic``; return once all are acknowledged, or raise
    :class:`DeliveryFailed` at the first failure or after ``timeout_s``.

    Records of a failed request may still have been stored: a sender retrying the request
    makes duplicates, which carry the same alert ids and are dropped by deduplication.
    """
    if not records:
        return
    futures: list[asyncio.Future[None]] = []
    try:
        async with asyncio.timeout(timeout_s):
            for r in records:
                futures.append(
                    await sink.send(key=r.key, value=r.value, headers=r.headers, topic=topic)
                )
            await asyncio.wait(futures, return_when=asyncio.FIRST_EXCEPTION)
    except (KafkaException, BufferError) as exc:  # produce() itself refused
        raise failed(exc) from None
    except TimeoutError:
        raise DeliveryFailed(
            f"the broker did not acknowledge within {timeout_s:g} s", transient=True
        ) from None
    finally:
        for f in futures:
            if not f.done():
                f.add_done_callback(_retrieve)
    errors = [e for f in futures if f.done() and (e := f.exception()) is not None]
    if errors:
        raise failed(errors[0])


def failed(exc: BaseException) -> DeliveryFailed:
    """The :class:`DeliveryFailed` of a send's exception."""
    if isinstance(exc, Rejected):
        return DeliveryFailed(
            f"the broker refused a message: {exc}", transient=False, too_large=exc.too_large
        )
    if isinstance(exc, KafkaException) and isinstance(exc.args[0], KafkaError):
        err = exc.args[0]
        return DeliveryFailed(f"the broker did not store a message: {err.name()}", transient=True)
    return DeliveryFailed(f"the broker did not store a message: {exc}", transient=True)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class KafkaSink:
    """The gateway's producer: idempotent, ``acks=all``, librdkafka giving up on a message
    after the delivery timeout (so a message answered 503 is not stored much later).

    A fatal producer error (the idempotent producer's sequence state is lost, e.g. a broker
    that forgot the producer id) fails the messages queued then, and the next send starts
    a new producer.
    """

    def __init__(
        self,
        client_config: dict[str, Any],
        topic: str,
        *,
        delivery_timeout_s: float,
        max_message_bytes: int,
    ) -> None:
        self.topic = topic
        self._config = {
            **client_config,
            "message.timeout.ms": max(1, int(delivery_timeout_s * 1000)),
        }
        self._max_message_bytes = max_message_bytes
        self._publisher = self._new_publisher()
        self._retired: set[asyncio.Future[int]] = set()

    def _new_publisher(self) -> Publisher:
        return Publisher(self._config, self.topic, self._max_message_bytes)

    def _replace(self, fatal: KafkaError | None) -> None:
        log.error("producer fatal error, starting a new producer", error=_name(fatal))
        old, self._publisher = self._publisher, self._new_publisher()
        closing = asyncio.get_running_loop().run_in_executor(None, old.close, 0.0)
        self._retired.add(closing)
        closing.add_done_callback(self._retired.discard)

    async def send(
        self,
        *,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        topic: str | None = None,
    ) -> asyncio.Future[None]:
        if self._publisher.fatal is not None:
            self._replace(self._publisher.fatal)
        try:
            return await self._publisher.send(key=key, value=value, headers=headers, topic=topic)
        except KafkaException as exc:
            err = exc.args[0]
            if not (isinstance(err, KafkaError) and err.code() == KafkaError._FATAL):
                raise
            self._replace(self._publisher.fatal or err)
            return await self._publisher.send(key=key, value=value, headers=headers, topic=topic)

    def close(self, timeout_s: float) -> int:
        """Deliver what is queued (up to ``timeout_s``); returns how many were not."""
        return self._publisher.close(timeout_s)


def _name(err: KafkaError | None) -> str:
    return err.name() if err is not None else "unknown"
