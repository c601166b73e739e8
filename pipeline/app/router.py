"""Sending onto the by-domain topic: alerts to their correlation domain's partition, and
feedback to the partition of its incident's domain (wire format in :mod:`routing`)."""

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
from pipeline.domain.schemas import Alert
from pipeline.domain.topology import Topology

#: by-domain partition -> (alerts, when each reached its source topic)
Routed = dict[int, tuple[list[Alert], list[float]]]


class DomainRouter:
    def __init__(
        self, topic: Any, topology: Topology, partitions: int, credit: RouteCredit
    ) -> None:
        self.topic = topic
        self.topology = topology
        #: partitions of the by-domain topic (its real count, which may differ from the setting)
        self.partitions = partitions
        self.credit = credit

    def partition_of(self, alert: Alert) -> int:
        """The by-domain partition that correlates ``alert``."""
        domain = self.topology.domain(alert.service, alert.labels)
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
            await asyncio.gather(*sends)

    async def send_feedback(self, domain: str, value: bytes) -> None:
        await self.topic.send(
            key=domain.encode(),
            value=value,
            partition=domain_partition(domain, self.partitions),
            headers=[(KIND_HEADER, KIND_FEEDBACK)],
        )
