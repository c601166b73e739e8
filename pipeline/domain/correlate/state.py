"""The correlator's per-incident state, its snapshot codec and the book of incidents.

The structs are msgspec structs so that a snapshot is a compact, typed msgpack document.
Their field names, order and defaults are the snapshot format: checkpoints in Redis must
keep restoring, so change them only with ``SNAPSHOT_VERSION`` (fields added at the end with
a default keep older checkpoints readable: :func:`upgrade` fills them in after a restore).

An incident's members in all are ``len(members)`` plus the ones it forgot (its
:class:`Archive`, see :mod:`.compaction`); ``inc.alert_count`` and ``inc.alert_counts`` count
them all and are kept up to date on every change.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import msgspec

from pipeline.domain.correlate.journal import MembershipJournal
from pipeline.domain.schemas import (
    SEVERITY_RANK,
    AlertCount,
    AlertRef,
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
    sev_n: list[int] = []  # member count per severity rank (paging gates), forgotten ones too
    archive: Archive | None = None  # what the incident keeps of the members it forgot
    # (service, alert name) -> position of its count in inc.alert_counts
    count_at: dict[str, dict[str, int]] = {}
    # cross-domain correlation (set by the merge stage's controls, see :mod:`.controls`):
    span_start: float | None = None  # its cross-domain group's first alert, when earlier
    split_from: str | None = None  # the incident whose reopen it was split off
    # service -> label pairs all its member alerts carried (bounded, see :mod:`.labels`)
    common: dict[str, dict[str, str]] = {}


class Archive(msgspec.Struct):
    """The summary of the members an incident forgot (see :mod:`.compaction`): what ranking,
    the paging gate, the counts and :func:`.lifecycle.rebuild` need of them."""

    count: int = 0  # members forgotten
    sev_n: list[int] = []  # of them, per severity rank
    sev: int = 0  # highest severity rank
    first_t: float = float("inf")
    last_t: float = float("-inf")  # latest firing time
    last_change_t: float = float("-inf")  # latest firing or resolve time
    evidence: dict[str, list[str]] = {}  # service -> kinds (sorted)
    first_seen: dict[str, float] = {}
    counts: dict[str, dict[str, int]] = {}  # service -> alert name -> members

    def add(self, m: Member, name: str) -> None:
        """Fold the forgotten member ``m`` (alert ``name``) into the summary."""
        self.count += 1
        if not self.sev_n:
            self.sev_n = [0] * len(SEVERITY_RANK)
        self.sev_n[m.sev] += 1
        if m.sev > self.sev:
            self.sev = m.sev
        if m.t < self.first_t:
            self.first_t = m.t
        if m.t > self.last_t:
            self.last_t = m.t
        changed = m.t if m.rt is None else max(m.t, m.rt)
        if changed > self.last_change_t:
            self.last_change_t = changed
        self._evidence(m.service, [m.kind], m.t)
        names = self.counts.setdefault(m.service, {})
        names[name] = names.get(name, 0) + 1

    def merge(self, other: Archive) -> None:
        """Fold in another incident's archive (it merged into this one)."""
        self.count += other.count
        if other.sev_n:
            if not self.sev_n:
                self.sev_n = [0] * len(SEVERITY_RANK)
            self.sev_n = [a + b for a, b in zip(self.sev_n, other.sev_n, strict=True)]
        self.sev = max(self.sev, other.sev)
        self.first_t = min(self.first_t, other.first_t)
        self.last_t = max(self.last_t, other.last_t)
        self.last_change_t = max(self.last_change_t, other.last_change_t)
        for svc, kinds in other.evidence.items():
            self._evidence(svc, kinds, other.first_seen[svc])
        for svc, names in other.counts.items():
            mine = self.counts.setdefault(svc, {})
            for name, n in names.items():
                mine[name] = mine.get(name, 0) + n

    def _evidence(self, service: str, kinds: list[str], t: float) -> None:
        cur = self.evidence.get(service)
        if cur is None:
            self.evidence[service] = sorted(kinds)
            self.first_seen[service] = t
            return
        for k in kinds:
            if k not in cur:
                cur.append(k)
                cur.sort()
        if t < self.first_seen[service]:
            self.first_seen[service] = t


class Snapshot(msgspec.Struct):
    """A correlator checkpoint: the event-time watermark and every tracked incident."""

    version: int
    watermark: float
    states: list[IncidentState]
    #: calls learned from alert labels, in the order learned
    learned_edges: list[tuple[str, str]] = []
    #: the co-occurrence learner's checkpoint (empty: none)
    cooccurrence: bytes = b""
    #: where learned calls were learned from, when not from alert labels (caller, callee,
    #: origin); absent in older checkpoints (their calls then read as from alert labels)
    learned_origins: list[tuple[str, str, str]] = []


_decoder = msgspec.msgpack.Decoder(Snapshot)
_encoder = msgspec.msgpack.Encoder()


def encode_snapshot(
    watermark: float,
    states: list[IncidentState],
    learned_edges: list[tuple[str, str]] | None = None,
    cooccurrence: bytes = b"",
    learned_origins: list[tuple[str, str, str]] | None = None,
) -> bytes:
    """The msgpack checkpoint of ``states`` at ``watermark`` (and what was learned)."""
    return _encoder.encode(
        Snapshot(
            SNAPSHOT_VERSION,
            watermark,
            states,
            learned_edges or [],
            cooccurrence,
            learned_origins or [],
        )
    )


def decode_snapshot(data: bytes) -> Snapshot:
    """Decode a checkpoint; ``ValueError`` if it has another ``SNAPSHOT_VERSION``."""
    snap = _decoder.decode(data)
    if snap.version != SNAPSHOT_VERSION:
        raise ValueError(f"unsupported correlator snapshot version {snap.version}")
    return snap


def span_start(st: IncidentState) -> float:
    """Where ``max_span_s`` counts from: the incident's first alert, or its cross-domain
    group's when that is earlier (a control from the merge stage)."""
    t = st.span_start
    return st.first_t if t is None or t >= st.first_t else t


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
    if ref.status is AlertStatus.firing:
        ref.status = AlertStatus.resolved
        if t is not None:
            ref.resolved_at = datetime.fromtimestamp(t, UTC)
        count_firing(st, ref, -1)


def members_in_all(st: IncidentState) -> int:
    """The incident's members, forgotten ones included."""
    return len(st.members) + (st.archive.count if st.archive is not None else 0)


def count_alert(st: IncidentState, service: str, name: str, count: int, firing: int) -> None:
    """Add ``count`` members of (``service``, ``name``), ``firing`` of them firing, to the
    incident's counts (``inc.alert_counts``, in the order the pairs first joined)."""
    counts = st.inc.alert_counts
    names = st.count_at.get(service)
    if names is None:
        names = st.count_at[service] = {}
    pos = names.get(name)
    if pos is None:
        names[name] = len(counts)
        counts.append(AlertCount(service=service, name=name, count=count, firing=firing))
    else:
        c = counts[pos]
        c.count += count
        c.firing += firing


def count_firing(st: IncidentState, ref: AlertRef, delta: int) -> None:
    """A member alert started (+1) or stopped (-1) counting as firing in the counts."""
    pos = st.count_at.get(ref.service, {}).get(ref.name)
    if pos is not None:
        st.inc.alert_counts[pos].firing += delta


def recount(st: IncidentState) -> None:
    """Recompute ``alert_count``, the counts and the paging tally from the archive and the
    members (after a split moved members away, or a restore of an older checkpoint)."""
    inc = st.inc
    inc.alert_counts = []
    st.count_at = {}
    sev_n = [0] * len(SEVERITY_RANK)
    arch = st.archive
    if arch is not None:
        for svc, names in arch.counts.items():
            for name, n in names.items():
                count_alert(st, svc, name, n, 0)
        if arch.sev_n:
            sev_n = list(arch.sev_n)
    alerts = inc.alerts
    for m in st.members:
        ref = alerts[m.ref]
        count_alert(st, ref.service, ref.name, 1, int(ref.status is AlertStatus.firing))
        sev_n[m.sev] += 1
    st.sev_n = sev_n
    inc.alert_count = members_in_all(st)


def upgrade(st: IncidentState) -> None:
    """Fill in what a checkpoint written before the counts (or the members' resolve times,
    or the common labels) were kept lacks."""
    for m in st.members:
        if m.rt is not None and m.rt > m.t:  # resolved by a resolve, not for going stale
            ref = st.inc.alerts[m.ref]
            if ref.resolved_at is None and ref.status is AlertStatus.resolved:
                ref.resolved_at = datetime.fromtimestamp(m.rt, UTC)
    if st.members and not st.count_at:
        sev_n = st.sev_n
        recount(st)
        if len(sev_n) != len(SEVERITY_RANK):
            st.sev_n = sev_n  # (the paging gate recounts it when it needs it)
    st.inc.alert_count = members_in_all(st)
    for service in st.evidence:  # a checkpoint from before common labels: none are known
        st.common.setdefault(service, {})


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
