"""In-memory StateStore for replay, benchmarks and unit tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from pipeline.adapters.redis_store import feedback_message_id
from pipeline.domain.correlate.journal import MembershipOp, Memberships


class MemoryStore:
    """Same semantics as :class:`RedisStore`, without expiry."""

    unavailable: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self) -> None:
        self.dedup: dict[str, str] = {}
        self.checkpoints: dict[str, bytes] = {}
        self.incidents: dict[str, bytes] = {}
        self.open_ids: set[str] = set()
        self.feedback: dict[str, list[bytes]] = {}
        self.feedback_ids: dict[str, set[str]] = {}
        self.memberships = Memberships()
        #: partition -> (stream id, control) in order
        self.controls: dict[int, list[tuple[str, bytes]]] = {}
        self._seq = 0
        self.progress: dict[int, float] = {}
        self.ingest_marks: dict[int, tuple[float, bool, float]] = {}

    def with_timeout(self, seconds: float) -> MemoryStore:
        """This store (it never hangs)."""
        return self

    def dedup_states(self, fingerprints: Iterable[str]) -> dict[str, str | None]:
        return {fp: self.dedup.get(fp) for fp in fingerprints}

    def commit(
        self,
        *,
        dedup_states: Mapping[str, str],
        checkpoints: Mapping[str, bytes],
        incidents: Mapping[str, bytes],
        closed_incidents: Iterable[str] = (),
        membership: Sequence[MembershipOp] = (),
    ) -> None:
        self.dedup.update(dedup_states)
        self.memberships.apply(list(membership))
        self.checkpoints.update(checkpoints)
        self.incidents.update(incidents)
        self.open_ids.update(incidents)
        self.open_ids.difference_update(closed_incidents)

    def load_checkpoint(self, name: str) -> bytes | None:
        return self.checkpoints.get(name)

    def save_checkpoint(self, name: str, data: bytes) -> None:
        self.checkpoints[name] = data

    def get_incident(self, incident_id: str) -> bytes | None:
        return self.incidents.get(incident_id)

    def incident_members(self, incident_id: str) -> list[str]:
        return self.memberships.of(incident_id)

    def open_incident_ids(self) -> list[str]:
        return sorted(self.open_ids)

    def append_controls(self, controls: Sequence[tuple[int, bytes]]) -> None:
        for partition, data in controls:
            self._seq += 1
            self.controls.setdefault(partition, []).append((f"{self._seq}-0", data))

    def read_controls(self, partition: int, after: str) -> list[tuple[str, bytes]]:
        start = int(after.split("-")[0])
        return [(i, d) for i, d in self.controls.get(partition, []) if int(i.split("-")[0]) > start]

    def trim_controls(self, partition: int, upto: str) -> None:
        end = int(upto.split("-")[0])
        rows = self.controls.get(partition, [])
        self.controls[partition] = [(i, d) for i, d in rows if int(i.split("-")[0]) > end]

    def set_domain_progress(self, progress: Mapping[int, float]) -> None:
        self.progress.update(progress)

    def domain_progress(self) -> dict[int, float]:
        return dict(self.progress)

    def share_ingest_marks(
        self, marks: Mapping[int, tuple[float, bool]], now: float
    ) -> dict[int, tuple[float, bool, float]]:
        self.ingest_marks.update({p: (t, b, now) for p, (t, b) in marks.items()})
        return dict(self.ingest_marks)

    def record_feedback(self, incident_id: str, data: bytes, source: str | None = None) -> bool:
        seen = self.feedback_ids.setdefault(incident_id, set())
        key = feedback_message_id(data, source)
        if key in seen:
            return False
        seen.add(key)
        self.feedback.setdefault(incident_id, []).append(data)
        return True
