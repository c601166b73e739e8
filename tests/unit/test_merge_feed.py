"""MergeFeed's hand-off from its consumer thread to the event loop (no broker: the thread
that would poll Kafka is replaced by one that calls ``_deliver`` directly)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest

from pipeline.app.merge_feed import FeedStopped, MergeFeed


@dataclass
class _Msg:
    """The part of a confluent-kafka ``Message`` that ``_deliver`` reads."""

    off: int

    def topic(self) -> str:
        return "merge"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self.off

    def key(self) -> bytes | None:
        return None

    def value(self) -> bytes:
        return b"v%d" % self.off

    def headers(self) -> list[tuple[str, bytes]] | None:
        return None


async def _noop() -> None:
    return None


def _feed() -> MergeFeed:
    return MergeFeed({}, "merge", "g-merge", lambda: None, _noop, _noop)


def test_messages_from_another_thread_arrive_in_order_and_the_queue_count_returns_to_zero() -> None:
    async def run() -> list[int]:
        feed = _feed()
        feed._loop = asyncio.get_running_loop()
        feed._queue = asyncio.Queue()
        n = 5_000

        def produce() -> None:
            for i in range(n):
                feed._deliver(feed.generation, _Msg(i))

        t = threading.Thread(target=produce)
        t.start()
        got: list[int] = []
        while len(got) < n:
            _, events = await feed.take(500, 0.01)
            got.extend(e.message.offset for e in events)
        t.join()
        assert feed.queued == 0
        return got

    assert asyncio.run(run()) == list(range(5_000))


def test_messages_of_an_earlier_assignment_are_dropped_but_counted_as_taken() -> None:
    async def run() -> tuple[int, list[int]]:
        feed = _feed()
        feed._loop = asyncio.get_running_loop()
        feed._queue = asyncio.Queue()
        feed._deliver(0, _Msg(1))
        feed.generation = 1  # a rebalance happened before the stage took it
        feed._deliver(1, _Msg(2))
        await asyncio.sleep(0)
        gen, events = await feed.take(10, 0.01)
        assert feed.queued == 0
        return gen, [e.message.offset for e in events]

    assert asyncio.run(run()) == (1, [2])


def test_a_failed_consumer_thread_ends_the_stage_instead_of_starving_it() -> None:
    async def run() -> None:
        feed = _feed()
        feed._loop = asyncio.get_running_loop()
        feed._queue = asyncio.Queue()
        feed._deliver(0, _Msg(1))
        t = threading.Thread(target=feed._fail, args=(RuntimeError("broker gone"),))
        t.start()
        t.join()
        await asyncio.sleep(0)
        _, events = await feed.take(1, 0.01)  # what arrived before the failure is handed on
        assert [e.message.offset for e in events] == [1]
        with pytest.raises(FeedStopped, match="broker gone"):
            await feed.take(10, 0.01)

    asyncio.run(run())


def test_a_consumer_that_cannot_be_created_fails_the_stage() -> None:
    async def run() -> None:
        feed = MergeFeed({"no.such.setting": "x"}, "merge", "g-merge", lambda: None, _noop, _noop)
        feed.start()
        with pytest.raises(FeedStopped, match=r"no\.such\.setting"):
            await asyncio.wait_for(feed.take(1, 0.01), 10)
        assert feed.highwaters() == {}

    asyncio.run(run())
