"""Group commit of correlate state: what steps changed since the last Redis write.

A correlate step publishes its incident events at once, but its state (dedup states,
correlator checkpoint, published incidents) is written to Redis once per
``worker.commit_interval_s`` for every partition that changed, in the background, and only
then are the step's by-domain messages acknowledged. A crash loses at most the steps since
the last write, and those are consumed again: the checkpoint records the last by-domain
offset it covers, so a message is never applied twice.

Until a write lands, the dedup states it carries stay visible to later steps
(:meth:`Unsaved.dedup_view`), so a step never reads a state older than one it wrote.
No Faust, Kafka or Redis here: the worker does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.domain.correlate.journal import MembershipOp


@dataclass
class PartitionChanges:
    """One by-domain partition's changes since its last write."""

    dedup: dict[str, str] = field(default_factory=dict)
    #: incident id -> its latest published encoding
    incidents: dict[str, bytes] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    #: highest by-domain offset applied (-1: none in this batch)
    offset: int = -1
    #: membership changes, in order
    membership: list[MembershipOp] = field(default_factory=list)

    def absorb(self, newer: PartitionChanges) -> None:
        """Merge ``newer`` changes into these (later values win)."""
        self.membership.extend(newer.membership)
        self.dedup.update(newer.dedup)
        self.incidents.update(newer.incidents)
        reopened = newer.incidents.keys() - newer.closed
        self.closed = (self.closed - reopened) | newer.closed
        self.offset = max(self.offset, newer.offset)


@dataclass
class Batch:
    """One write: the partitions' changes and the messages to acknowledge once written."""

    changes: dict[int, PartitionChanges]
    messages: list[Any]


class Unsaved:
    """Changes not yet written, and writes in flight."""

    def __init__(self) -> None:
        self.changes: dict[int, PartitionChanges] = {}
        self.messages: list[Any] = []
        self.in_flight: list[Batch] = []

    def __bool__(self) -> bool:
        return bool(self.changes or self.messages)

    def record(
        self,
        partition: int,
        *,
        dedup: Mapping[str, str] = {},
        incidents: Mapping[str, bytes] = {},
        closed: Iterable[str] = (),
        offset: int = -1,
        membership: Iterable[MembershipOp] = (),
    ) -> None:
        """Note what a step or lifecycle tick changed in ``partition``."""
        ch = self.changes.get(partition)
        if ch is None:
            ch = self.changes[partition] = PartitionChanges()
        ch.membership.extend(membership)
        ch.dedup.update(dedup)
        ch.incidents.update(incidents)
        ch.closed.difference_update(incidents)
        ch.closed.update(closed)
        ch.offset = max(ch.offset, offset)

    def add_messages(self, messages: Iterable[Any]) -> None:
        """Messages to acknowledge once the changes made from them are written."""
        self.messages.extend(messages)

    def dedup_view(self) -> list[dict[str, str]]:
        """Dedup states written by no landed write yet, oldest first. Take it before reading
        Redis: a write landing during the read is then still covered."""
        return [ch.dedup for b in self.in_flight for ch in b.changes.values()] + [
            ch.dedup for ch in self.changes.values()
        ]

    def take(self) -> Batch:
        """Start a write of everything unsaved."""
        batch = Batch(self.changes, self.messages)
        self.changes, self.messages = {}, []
        self.in_flight.append(batch)
        return batch

    def landed(self, batch: Batch) -> None:
        self.in_flight.remove(batch)

    def failed(self, batch: Batch) -> None:
        """A write did not land: its changes and messages go back in front of newer ones."""
        self.in_flight.remove(batch)
        for p, older in batch.changes.items():
            newer = self.changes.get(p)
            if newer is not None:
                older.absorb(newer)
            self.changes[p] = older
        self.messages = batch.messages + self.messages


def overlay(known: dict[str, str | None], views: list[dict[str, str]]) -> dict[str, str | None]:
    """``known`` (read from Redis) with the unwritten dedup states applied, newest last."""
    for view in views:
        if view:
            for fp in known:
                state = view.get(fp)
                if state is not None:
                    known[fp] = state
    return known
