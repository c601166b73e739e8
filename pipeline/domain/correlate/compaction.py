"""Bounded incidents: an incident past ``max_members`` members forgets the least useful half.

A storm can put a million alerts into one incident within ``max_span_s``. So that the worker's
memory stays flat, an incident whose members exceed ``max_members`` is compacted down to
``max_members // 2`` (amortized O(1) per alert): it forgets the members that are not their
series' firing member first (resolved ones, and earlier notifications of a series), oldest
first, then the oldest firing ones. A member forgotten:

* is counted, not listed: it leaves ``members``, ``inc.alerts`` and ``inc.alert_ids`` and is
  folded into the incident's :class:`~.state.Archive` (count per severity, per (service,
  alert name), evidence and first-seen time per service, time span), which ranking, the paging
  gate, ``inc.alert_count``/``inc.alert_counts`` and :func:`.lifecycle.rebuild` go on using;
  the membership journal (and so the store and ``replay``) still lists it;
* takes its series with it when it was the series' last tracked member: out of ``firing``,
  ``fp_last``, ``fires`` and the book's series (when the book points at this incident). A
  forgotten series that resolves later is not tracked (the incident resolves once its tracked
  members resolved and it was quiet for ``quiet_period_s``); one that fires again relates to
  incidents through the graph like any alert; it counts as not firing in the counts;
* stays with this incident if a split reopen (:meth:`.lifecycle.Lifecycle.split_reopened`)
  later moves the members since the reopen to a new incident: only the tracked ones move.

Windowed paging gates count the members still held (the newest, and those firing).
"""

from __future__ import annotations

from pipeline.domain.correlate.state import (
    Archive,
    Book,
    IncidentState,
    Member,
    count_firing,
)
from pipeline.domain.schemas import AlertRef, AlertStatus


def compact(st: IncidentState, book: Book, max_members: int) -> int:
    """Forget members of ``st`` down to ``max_members // 2`` once it has more than
    ``max_members`` (0: never); returns how many it forgot."""
    members = st.members
    n = len(members)
    if max_members <= 0 or n <= max_members:
        return 0
    drop = n - max(1, max_members // 2)
    firing = st.firing
    # which members go: not firing first, then firing, each oldest first
    tracked = bytearray(n)
    for i in firing.values():
        tracked[i] = 1
    gone = bytearray(n)
    left = drop
    for flag in (0, 1):
        for i in range(n):
            if tracked[i] == flag:
                gone[i] = 1
                left -= 1
                if not left:
                    break
        if not left:
            break
    inc = st.inc
    alerts = inc.alerts
    arch = st.archive
    if arch is None:
        arch = st.archive = Archive()
    kept: list[Member] = []
    kept_refs: list[AlertRef] = []
    new_pos = [-1] * n
    before_reopen = 0
    for i, m in enumerate(members):
        ref = alerts[m.ref]
        if gone[i]:
            arch.add(m, ref.name)
            if ref.status is AlertStatus.firing:
                count_firing(st, ref, -1)  # not tracked any more: counted as not firing
            if i < st.reopen_at:
                before_reopen += 1
        else:
            new_pos[i] = m.ref = len(kept)
            kept.append(m)
            kept_refs.append(ref)
    st.members = kept
    inc.alerts = kept_refs
    inc.alert_ids = [ref.id for ref in kept_refs]
    st.reopen_at -= before_reopen
    # series: a series is forgotten with its last tracked member
    for fp, i in list(firing.items()):
        if gone[i]:
            del firing[fp]
        else:
            firing[fp] = new_pos[i]
    iid = inc.id
    series = book.series
    fp_last = st.fp_last
    for fp, i in list(fp_last.items()):
        if not gone[i]:
            fp_last[fp] = new_pos[i]
        elif fp in firing:
            fp_last[fp] = firing[fp]  # (a merge can leave a series firing on an older member)
        else:
            del fp_last[fp]
            if series.get(fp) == iid:
                del series[fp]
    for fp in [fp for fp in st.fires if fp not in fp_last]:
        del st.fires[fp]
    return drop
