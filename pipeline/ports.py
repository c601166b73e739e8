"""Protocols for the stores and publishers the pipeline talks to (implemented in adapters/)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from pipeline.domain.correlate.journal import MembershipOp


class StateStore(Protocol):
    """Durable state: dedup states, engine checkpoints, incident records, model checkpoints."""

    def dedup_states(self, fingerprints: Iterable[str]) -> dict[str, str | None]: ...

    def commit(
        self,
        *,
        dedup_states: Mapping[str, str],
        checkpoints: Mapping[str, bytes],
        incidents: Mapping[str, bytes],
        closed_incidents: Iterable[str] = (),
        membership: Sequence[MembershipOp] = (),
    ) -> None:
        """Persist one batch's results atomically."""
        ...

    def incident_members(self, incident_id: str) -> list[str]: ...

    def load_checkpoint(self, name: str) -> bytes | None: ...

    def save_checkpoint(self, name: str, data: bytes) -> None: ...

    def get_incident(self, incident_id: str) -> bytes | None: ...

    def open_incident_ids(self) -> list[str]: ...
