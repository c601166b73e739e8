"""Feedback is stored once per message: a message read again after a crash (or a retried
write that had landed) is not appended again."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pipeline.adapters.memory_store import MemoryStore
from pipeline.adapters.redis_store import feedback_message_id
from pipeline.app.agents.feedback import _source


def _event(topic: str, partition: int, offset: int, value: bytes) -> Any:
    return SimpleNamespace(
        message=SimpleNamespace(topic=topic, partition=partition, offset=offset), value=value
    )


def test_a_message_read_twice_is_stored_once() -> None:
    store = MemoryStore()
    ack = b'{"incident_id":"i1","action":"ack","timestamp":"2024-01-01T00:00:00Z"}'
    first = _event("feedback", 2, 17, ack)
    assert store.record_feedback("i1", ack, _source(first))
    # the worker was killed before its offset was committed: the same message again
    assert not store.record_feedback("i1", ack, _source(_event("feedback", 2, 17, ack)))
    assert store.feedback["i1"] == [ack]
    # the same bytes sent again (another message, another offset) are another message
    assert store.record_feedback("i1", ack, _source(_event("feedback", 2, 18, ack)))
    assert len(store.feedback["i1"]) == 2


def test_without_its_source_a_message_is_identified_by_its_content() -> None:
    store = MemoryStore()
    assert _source(SimpleNamespace(value=b"x")) is None
    assert store.record_feedback("i1", b"a") and not store.record_feedback("i1", b"a")
    assert store.record_feedback("i1", b"b")
    assert feedback_message_id(b"a") != feedback_message_id(b"b")
    assert feedback_message_id(b"a", "feedback/0/3") == "feedback/0/3"
