"""Sending onto the by-domain topic: alerts to their correlation domain's partition, and
feedback to the partition of its incident's domain (wire format in :mod:`routing`).

A domain's partition is the CRC-32 of its name, or, when the topology is split into
domains, the partition the stored domain map gives it (:mod:`pipeline.app.domain_map`)."""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline.app.backpressure import RouteCredit
from pipeline.app.routing import (
    KIND_ALERTS,
    KIND_FEEDBACK,
    KIND_HEADER,
    domain_partition,
    encode_batches,
    encode_marks,
)
from pipeline.domain.alignment import SourceMark
from pipeline.domain.domains import DomainMap
from pipeline.domain.schemas import Alert
from pipeline.domain.topology import Topology

#: by-domain partition -> (alerts, when each reached its source topic)
Routed = dict[int, tuple[list[Alert], list[float]]]


class DomainRouter:
    def __init__(
        self,
        topic: Any,
        topology: Topology,
        partitions: int,
        credit: RouteCredit,
        domain_map: DomainMap | None = None,
    ) -> None:
        self.topic = topic
        self.topology = topology
        #: partitions of the by-domain topic (its real count, which may differ from the setting)
        self.partitions = partitions
        self.credit = credit
        self.domain_map = domain_map

    def partition_of(self, alert: Alert) -> int:
        """The by-domain partition that correlates ``alert``."""
        return self.partition_for(self.topology.domain(alert.service, alert.labels))

    def partition_for(self, domain: str) -> int:
        """The by-domain partition of a correlation domain."""
        if self.domain_map is not None:
            return self.domain_map.partition(domain) % self.partitions
        return domain_partition(domain, self.partitions)

    @staticmethod
    def add(routed: Routed, partition: int, alert: Alert, arrival: float) -> None:
        batch = routed.get(partition)
        if batch is None:
            batch = routed[partition] = ([], [])
        batch[0].append(alert)
        batch[1].append(arrival)

    async def send_alerts(self, routed: Routed, marks: list[SourceMark] | None = None) -> None:
        """Send each partition's alerts as batch messages, then ``marks`` to every partition
        (after the alerts they account for), and wait for the broker's acks."""
        sends = []
        for part, (alerts, arrivals) in routed.items():
            self.credit.routed(part, len(alerts))
            for value in encode_batches(alerts, arrivals):
                sends.append(
                    await self.topic.send(
                        value=value, partition=part, headers=[(KIND_HEADER, KIND_ALERTS)]
                    )
                )
        if marks:
            value = encode_marks(marks)
            for part in range(self.partitions):
                sends.append(
                    await self.topic.send(
                        value=value, partition=part, headers=[(KIND_HEADER, KIND_ALERTS)]
                    )
                )
        if sends:
            for meta in await asyncio.gather(*sends):
                self.credit.wrote(meta.partition, meta.offset)
            self.credit.sent(sum(len(a) for a, _ in routed.values()), len(sends))

    async def send_feedback(self, domain: str, value: bytes, partition: int | None = None) -> None:
        """Feedback for an incident of ``domain`` (on ``partition`` when the sender knows
        which partition holds the incident)."""
        await self.topic.send(
            key=domain.encode(),
            value=value,
            partition=self.partition_for(domain)
            if partition is None
            else partition % self.partitions,
            headers=[(KIND_HEADER, KIND_FEEDBACK)],
        )
