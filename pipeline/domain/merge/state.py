"""The merge stage's state: per-domain incident records, groups, union-find, snapshot codec.

A *record* is the merge stage's picture of one per-domain incident (built from its
summaries); a *group* is a set of records one correlator would have made one incident (its
evidence, times and status are the union of its members'). Groups are kept with a
union-find whose root is the group id: the member opened first (smallest first alert time,
then id), unless a domain merged the root into another member.

Everything here is bounded by the incidents alerts can still relate to (records are forgotten
``reopen_window_s`` after they resolved, groups with their last member) and is
msgpack-encodable as a whole (:func:`encode_state` / :func:`decode_state`).
"""

from __future__ import annotations

import msgspec

from pipeline.domain.schemas import AlertCount, Incident, RootCauseCandidate

INF = float("inf")

#: version of the merge stage's checkpoint format
STATE_VERSION = 1


class Record(msgspec.Struct, kw_only=True):
    """One per-domain incident as the merge stage knows it."""

    id: str
    domain: str
    partition: int
    status: str
    first_t: float
    last_t: float
    evidence: dict[str, set[str]] = {}
    first_seen: dict[str, float] = {}
    root: str | None = None
    n_alerts: int = 0
    resolved_t: float | None = None
    indexed: bool = False  # in the link indices (an alert may still relate to it)
    gone: bool = False  # absorbed by its own domain's correlator
    fps: set[str] = set()
    opener_fp: str | None = None
    index_end: float | None = None
    reopen_t: float | None = None
    #: its latest per-domain incident (to forward, or to build its group's incident from)
    incident: Incident | None = None
    #: an event went out on ``incidents`` under its own id
    published: bool = False


class Group(msgspec.Struct, kw_only=True):
    """Per-domain incidents one correlator would have made one incident."""

    id: str
    members: set[str]
    first_t: float
    last_t: float
    partitions: set[int] = set()
    domains: set[str] = set()
    unresolved: set[str] = set()
    resolved_t: float = -INF
    matching: set[str] = set()  # members their correlator still matches alerts to
    matching_end: float = -INF  # latest time a member stopped being matched to
    evidence: dict[str, set[str]] = {}
    first_seen: dict[str, float] = {}
    root: str | None = None
    candidates: list[RootCauseCandidate] = []
    ranked: bool = False  # ranked over the union evidence at least once
    pending: int = 0  # evidence changes not ranked yet
    reasons: list[str] = []  # the first few merge reasons
    n_reasons: int = 0
    #: events went out under the group id as a cross-domain group
    published: bool = False
    version: int = 0
    #: status of its last published event
    published_status: str = ""
    #: root cause of its last published event
    published_root: str | None = None
    #: counts of members the merge stage already forgot (still part of the group)
    retired_counts: list[AlertCount] = []
    retired_alerts: int = 0

    @property
    def multi(self) -> bool:
        """Does the group span several partitions (correlators)?"""
        return len(self.partitions) > 1


class MergeState(msgspec.Struct, kw_only=True):
    """Everything the merge stage remembers (its checkpoint)."""

    version: int = STATE_VERSION
    watermark: float = -INF
    records: dict[str, Record] = {}
    groups: dict[str, Group] = {}
    parent: dict[str, str] = {}
    #: incident -> {incident related to it but not merged: when}
    links: dict[str, dict[str, float]] = {}
    #: (due time, incident id) of the records to look at again
    heap: list[tuple[float, str]] = []
    #: incident -> due time of its live heap entry (earlier entries supersede later ones)
    scheduled: dict[str, float] = {}
    #: service -> indexed incident ids
    svc_index: dict[str, set[str]] = {}
    #: direct dependency -> {indexed incident: first time a caller of it alerted there}
    dep_index: dict[str, dict[str, float]] = {}
    #: root cause -> indexed incident ids
    root_index: dict[str, set[str]] = {}
    #: span start sent per member
    span_sent: dict[str, float] = {}
    #: reopened incident asked to split -> the incident the split-off one is to join
    pending_split: dict[str, str] = {}

    def find(self, x: str) -> str:
        """The group id of incident ``x`` (path compression)."""
        parent = self.parent
        root = x
        while True:
            p = parent.get(root, root)
            if p == root:
                break
            root = p
        while x != root:
            nxt = parent.get(x, x)
            parent[x] = root
            x = nxt
        return root


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(MergeState)


def encode_state(state: MergeState) -> bytes:
    return _encoder.encode(state)


def decode_state(data: bytes) -> MergeState:
    """``ValueError`` for another :data:`STATE_VERSION`."""
    state = _decoder.decode(data)
    if state.version != STATE_VERSION:
        raise ValueError(f"unsupported merge-stage snapshot version {state.version}")
    return state
