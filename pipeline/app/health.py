"""Consumer stall detection for ``/healthz``: pure, the worker feeds it offsets and times."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Partition = tuple[str, int]

#: Messages past the last processed offset that count as work waiting: one more offset can
#: be a transaction marker, which no consumer ever receives.
MIN_WAITING = 2


@dataclass
class _State:
    offset: int | None = None  # last processed offset (None: nothing processed since assigned)
    baseline: int | None = None  # high watermark at the first probe, while offset is None
    behind_since: float | None = None  # when a probe first saw work waiting since last progress


class Progress:
    """Per assigned partition: the last offset processed, and since when work has waited.

    A partition is *stalled* when probes have seen at least ``MIN_WAITING`` messages waiting
    past its last processed offset for ``stall_after_s`` seconds without it moving. For a
    partition nothing was processed from since its assignment, the messages that arrived after
    the first probe are the ones waiting (its committed position is the broker's to tell).
    """

    def __init__(self, stall_after_s: float) -> None:
        self.stall_after_s = stall_after_s
        self.parts: dict[Partition, _State] = {}

    def assign(self, partitions: Iterable[Partition]) -> None:
        for tp in partitions:
            self.parts.setdefault(tp, _State())

    def forget(self, partitions: Iterable[Partition]) -> None:
        for tp in partitions:
            self.parts.pop(tp, None)

    def record(self, offsets: Mapping[Partition, int]) -> None:
        """Note the highest processed offset of each partition in a batch."""
        for tp, offset in offsets.items():
            st = self.parts.setdefault(tp, _State())
            if st.offset is None or offset > st.offset:
                st.offset = offset
                st.behind_since = None

    def stalled(self, highwaters: Mapping[Partition, int | None], now: float) -> dict[str, int]:
        """Probe with the partitions' high watermarks (next offset to be written):
        ``"topic/partition" -> messages waiting`` for every stalled partition."""
        out: dict[str, int] = {}
        for tp, hw in highwaters.items():
            st = self.parts.setdefault(tp, _State())
            if hw is None:
                continue
            if st.offset is None:
                if st.baseline is None:
                    st.baseline = hw
                waiting = hw - st.baseline
            else:
                waiting = hw - st.offset - 1
            if waiting < MIN_WAITING:
                st.behind_since = None
                continue
            if st.behind_since is None:
                st.behind_since = now
            elif now - st.behind_since >= self.stall_after_s:
                out[f"{tp[0]}/{tp[1]}"] = waiting
        return out

    def lag(
        self, highwaters: Mapping[Partition, int | None], positions: Mapping[Partition, int]
    ) -> dict[Partition, int]:
        """Messages waiting per partition: past the last processed offset, or, for a
        partition nothing was processed from since its assignment, past its consumer
        ``positions`` (next offset to fetch). Fewer than ``MIN_WAITING`` count as none (a
        transaction marker); partitions with neither offset nor position are left out."""
        out: dict[Partition, int] = {}
        for tp, hw in highwaters.items():
            if hw is None:
                continue
            st = self.parts.get(tp)
            if st is not None and st.offset is not None:
                waiting = hw - st.offset - 1
            elif tp in positions:
                waiting = hw - positions[tp]
            else:
                continue
            out[tp] = waiting if waiting >= MIN_WAITING else 0
        return out

    def unprocessed(self, partitions: Iterable[Partition]) -> list[Partition]:
        """Those of ``partitions`` nothing was processed from since their assignment."""
        return [tp for tp in partitions if (st := self.parts.get(tp)) is None or st.offset is None]


def by_topic(lag: Mapping[Partition, int]) -> dict[str, int]:
    """Per-partition lag summed per topic."""
    out: dict[str, int] = {}
    for (topic, _), n in lag.items():
        out[topic] = out.get(topic, 0) + n
    return out


def batch_offsets(messages: Iterable[tuple[str, int, int]]) -> dict[Partition, int]:
    """Highest offset per partition of ``(topic, partition, offset)`` triples."""
    out: dict[Partition, int] = {}
    for topic, partition, offset in messages:
        tp = (topic, partition)
        if offset > out.get(tp, -1):
            out[tp] = offset
    return out
