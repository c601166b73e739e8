"""The correlator's per-incident state, its snapshot codec and the book of incidents.

The structs are msgspec structs so that a snapshot is a compact, typed msgpack document.
Their field names, order and defaults are the snapshot format: checkpoints in Redis must
keep restoring, so change them only with ``SNAPSHOT_VERSION``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import msgspec

from pipeline.domain.correlate.journal import MembershipJournal
from pipeline.domain.schemas import (
    SEVERITY_RANK,
    AlertStatus,
    EventType,
    Incident,
    IncidentEvent,
    Severity,
)

SNAPSHOT_VERSION = 1


class Member(msgspec.Struct):
    """One member alert event of an incident, as the correlator needs it."""

    fp: str
    service: str
    kind: str
    sev: int
    t: float
    ref: int  # index into incident.alerts
    rt: float | None = None  # when it resolved


class IncidentState(msgspec.Struct):
    """One tracked incident: the published ``Incident`` and what correlating it needs."""

    inc: Incident
    first_t: float
    last_t: float  # latest firing alert
    last_change_t: float  # latest member event (firing or resolved)
    members: list[Member] = []
    firing: dict[str, int] = {}  # fingerprint -> member index (currently firing)
    fp_last: dict[str, int] = {}  # fingerprint -> latest member index
    evidence: dict[str, list[str]] = {}  # service -> kinds (sorted)
    first_seen: dict[str, float] = {}
    labels: list[str] = []  # "k=v" link labels seen
    gate: bool = False
    resolved_t: float | None = None
    confirmed: str | None = None
    merged_from: list[str] = []
    indexed: bool = True  # still in the join indices
    pending: int = 0  # evidence changes not ranked yet
    fires: dict[str, list[float]] = {}  # fingerprint -> recent fire times (flap detection)
    supp_root: str | None = None  # root the suppression flags were computed for
    reopen_t: float | None = None  # when it was last reopened (provisional for a burst)
    reopen_at: int = 0  # members before that reopen
    reopen_prev_t: float | None = None  # resolved_t before that reopen
    no_reopen: bool = False  # a recurrence turned out to be a new burst: never reopen again
    sev_n: list[int] = []  # member count per severity rank (paging gates)


class Snapshot(msgspec.Struct):
    """A correlator checkpoint: the event-time watermark and every tracked incident."""

    version: int
    watermark: float
    states: list[IncidentState]


_decoder = msgspec.msgpack.Decoder(Snapshot)
_encoder = msgspec.msgpack.Encoder()


def encode_snapshot(watermark: float, states: list[IncidentState]) -> bytes:
    """The msgpack checkpoint of ``states`` at ``watermark``."""
    return _encoder.encode(Snapshot(SNAPSHOT_VERSION, watermark, states))


def decode_snapshot(data: bytes) -> Snapshot:
    """Decode a checkpoint; ``ValueError`` if it has another ``SNAPSHOT_VERSION``."""
    snap = _decoder.decode(data)
    if snap.version != SNAPSHOT_VERSION:
        raise ValueError(f"unsupported correlator snapshot version {snap.version}")
    return snap


def incident_id(first_alert_id: str) -> str:
    """Deterministic incident id from the id of its first alert."""
    return "inc-" + hashlib.blake2b(first_alert_id.encode(), digest_size=8).hexdigest()


def to_dt(t: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(t, UTC)


SEVERITY_BY_RANK: dict[int, Severity] = {v: k for k, v in SEVERITY_RANK.items()}


def emit(st: IncidentState, etype: EventType, at: datetime, detail: str) -> IncidentEvent:
    """An event carrying the incident's current state; bumps the incident's version."""
    st.inc.version += 1
    return IncidentEvent(type=etype, incident=st.inc, at=at, detail=detail)


def mark_resolved(st: IncidentState, idx: int, t: float | None = None) -> None:
    """Member ``idx`` resolved at ``t`` (default: when it fired); the caller updates ``firing``."""
    m = st.members[idx]
    m.rt = m.t if t is None else t
    ref = st.inc.alerts[m.ref]
    ref.status = AlertStatus.resolved


class Book:
    """The tracked incidents by id, the incident each alert series last joined, and the
    membership changes not taken yet."""

    __slots__ = ("journal", "series", "states")

    def __init__(self) -> None:
        self.states: dict[str, IncidentState] = {}
        self.series: dict[str, str] = {}  # fingerprint -> incident id
        self.journal = MembershipJournal()

    def free_id(self, first_alert_id: str) -> str:
        """The id for an incident first alerted by ``first_alert_id``, unique in the book.

        A collision happens when the same first alert id is sent again later.
        """
        iid = incident_id(first_alert_id)
        base = iid
        n = 1
        while iid in self.states:
            n += 1
            iid = f"{base}-{n}"
        return iid
