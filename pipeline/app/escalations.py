"""Escalation in the worker: incidents that page escalate through their team's policy until
someone acknowledges (docs/oncall.md, "Escalation in the worker").

The worker owning an incident's by-domain partition runs its escalation (owner = the
partition number). :meth:`Escalations.observe` sees each published step: an incident that
pages starts its root-cause owner's policy (the first step pages at once), an
acknowledgement on ``feedback`` stops it, a resolution or merge ends it.
:meth:`Escalations.tick` (a timer) pages the steps that are due in the partitions this
process holds and re-triggers acknowledgements that timed out. State lives in Redis
(:mod:`pipeline.adapters.escalation_store`), so a restarted or rebalanced worker picks the
due escalations up from the sorted set and pages on time.

Once per step: a transition and the pages it decides are one compare-and-set write (the
pages in the record's outbox); the pages are then published as ``escalated`` events and
removed from the outbox by a second write. A crash between the two re-sends them (the
window of a broker acknowledgement); a crash before the first redoes the transition.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
import structlog

from pipeline.adapters.escalation_store import EscalationStore
from pipeline.adapters.oncall_store import OnCallStore
from pipeline.app.metrics import Metrics
from pipeline.app.store_retry import StoreRetry
from pipeline.domain.oncall import Directory
from pipeline.domain.oncall.tracking import (
    LEASE_S,
    EscalationRecord,
    ends_escalation,
    escalated_event,
    plan_ack,
    plan_end,
    plan_start,
    plan_tick,
    sent,
    team_policy,
    wants_escalation,
)
from pipeline.domain.schemas import (
    EscalationPage,
    EventType,
    Feedback,
    FeedbackAction,
    Incident,
    IncidentEvent,
)

log = structlog.get_logger("stormwatch.escalation")
_T = TypeVar("_T")
_incident_decoder = msgspec.json.Decoder(Incident)
#: compare-and-set attempts before an update is left to the next tick
ATTEMPTS = 5
#: how often the on-call directory's version is looked at, at most (seconds)
DIRECTORY_CHECK_S = 1.0
#: how far the clocks of the dead worker and this one may be apart (read-back cut-off)
CLOCK_SKEW_S = 60.0
#: an escalation due this long whose incident is nowhere to be found ends
STALE_S = 3600.0
#: incidents remembered as "no policy applies for this root cause" (skips a Redis read)
MAX_SKIPPED = 10_000

_PageKey = tuple[int, int, int]
Plan = Callable[[EscalationRecord | None], EscalationRecord | None]
Send = Callable[[list[IncidentEvent]], Awaitable[Any]]
#: (incident, since epoch seconds) -> pages of it published since then, as
#: (triggered, cycle, step): :class:`pipeline.app.page_check.PageCheck`
Check = Callable[[str, float], set[tuple[int, int, int]]]
#: the incident as this process holds it (owner, incident id), None if it does not
Lookup = Callable[[str, str], Incident | None]


class Escalations:
    def __init__(
        self,
        records: EscalationStore,
        oncall: OnCallStore,
        incident_record: Callable[[str], bytes | None],
        retry: StoreRetry,
        send: Send,
        lookup: Lookup,
        metrics: Metrics,
        check: Check | None = None,
    ) -> None:
        self.records = records
        self.oncall = oncall
        #: the incident as last written to the store (``RedisStore.get_incident``)
        self.incident_record = incident_record
        self.retry = retry
        self.send = send
        self.lookup = lookup
        self.metrics = metrics
        #: reads back which pages of an incident are on ``incidents`` already
        self.check = check
        self.lock = asyncio.Lock()
        #: incident -> the root cause for which no escalation could start
        self.skipped: dict[str, str | None] = {}
        #: incidents with an escalation record, started or seen here
        self.known: set[str] = set()
        self._directory: tuple[int, Directory] | None = None
        self._checked = 0.0

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await self.retry.call("escalation", fn, *args)

    def _load_directory(self) -> Directory:
        """The on-call directory, read again when its version moved (looked at once a
        second at most: a change applies within a second)."""
        if self._directory is not None and time.monotonic() - self._checked < DIRECTORY_CHECK_S:
            return self._directory[1]
        self._checked = time.monotonic()
        version = self.oncall.version()
        if self._directory is None or self._directory[0] != version:
            try:
                directory = self.oncall.directory() if version else Directory()
            except ValueError as exc:  # stored data always parses; be safe anyway
                log.error("on-call directory unreadable; no escalation", error=str(exc))
                directory = Directory()
            self._directory = (version, directory)
            self.skipped.clear()  # a policy or an owner may have come
        return self._directory[1]

    async def observe(
        self, owner: str, events: list[IncidentEvent], feedback: list[Feedback], now: float
    ) -> None:
        """Start, stop or end escalations after a published step of partition ``owner``."""
        starts: dict[str, IncidentEvent] = {}
        ends: set[str] = set()
        for ev in events:
            iid = ev.incident.id
            if ends_escalation(ev):
                starts.pop(iid, None)
                if ev.incident.page or iid in self.known:
                    ends.add(iid)
            elif self._may_start(ev):
                starts[iid] = ev
        acks = {fb.incident_id: fb.timestamp for fb in feedback if fb.action is FeedbackAction.ack}
        if not (starts or ends or acks):
            return
        async with self.lock:
            directory = await self._call(self._load_directory)
            at = datetime.fromtimestamp(now, UTC)
            await self._start(directory, owner, list(starts.values()), at)
            for iid, when in acks.items():
                rec, wrote = await self._update(iid, _acked(directory, min(when, at)))
                if wrote and rec is not None and rec.status == "acknowledged":
                    self.metrics.escalation_changes.labels("acknowledged").inc()
            # one read tells which closed incidents this process knows nothing of escalate
            unknown = [i for i in ends if i not in self.known] if directory.policies else []
            stored = await self._call(self.records.load, unknown) if unknown else {}
            for iid in ends:
                if iid not in self.known and iid not in stored:
                    self.skipped.pop(iid, None)
                    continue
                rec, wrote = await self._update(iid, _ended)
                self.known.discard(iid)
                self.skipped.pop(iid, None)
                if wrote and rec is not None and rec.status == "resolved":
                    self.metrics.escalation_changes.labels("resolved").inc()

    def _may_start(self, ev: IncidentEvent) -> bool:
        """The event may start an escalation: the incident pages and is open, and this
        process knows of no escalation for it (or it reopened), nor that its root cause
        has no policy."""
        iid = ev.incident.id
        if not wants_escalation(ev):
            return False
        if iid in self.known and ev.type is not EventType.reopened:
            return False
        return iid not in self.skipped or self.skipped[iid] != ev.incident.root_cause

    async def _start(
        self, directory: Directory, owner: str, events: list[IncidentEvent], at: datetime
    ) -> None:
        """Start the escalations the events ask for: one read, one write and one publish
        round for all of them (a storm opens many incidents in one step)."""
        todo = []
        for ev in events:
            found = team_policy(directory, ev.incident)
            if isinstance(found, str):  # no policy applies: no need to read the store
                self._skip(ev.incident, found)
            else:
                todo.append(ev)
        if not todo:
            return
        stored = await self._call(self.records.load, [ev.incident.id for ev in todo])
        planned: list[tuple[EscalationRecord | None, EscalationRecord, Incident]] = []
        for ev in todo:
            inc = ev.incident
            previous = stored.get(inc.id)
            out = plan_start(directory, inc, owner, at, previous, ev.type is EventType.reopened)
            if isinstance(out, str):  # a record exists (here, or from an earlier owner)
                self.known.add(inc.id)
                continue
            planned.append((previous, out, inc))
        if not planned:
            return
        writes = [(p.rev if p is not None else None, rec) for p, rec, _ in planned]
        landed = await self._call(self.records.swap_many, writes)
        started = []
        for (_, rec, inc), ok in zip(planned, landed, strict=True):
            self.known.add(inc.id)  # written here, or by another worker meanwhile
            if ok:
                self.skipped.pop(inc.id, None)
                self.metrics.escalation_changes.labels("started").inc()
                log.info("escalation started", incident=inc.id, team=rec.team, policy=rec.policy)
                started.append((rec, inc))
        await self._flush(started)

    def _skip(self, inc: Incident, why: str) -> None:
        """Remember that no escalation applies to ``inc`` with its current root cause."""
        if len(self.skipped) >= MAX_SKIPPED:
            self.skipped.pop(next(iter(self.skipped)))
        self.skipped[inc.id] = inc.root_cause
        self.metrics.escalation_changes.labels("no_policy").inc()
        log.debug("no escalation", incident=inc.id, reason=why)

    async def _update(self, iid: str, plan: Plan) -> tuple[EscalationRecord | None, bool]:
        """Read, plan and compare-and-set until the write lands; returns the record as now
        stored (None: there is none) and whether this call wrote it."""
        for _ in range(ATTEMPTS):
            rec = (await self._call(self.records.load, [iid])).get(iid)
            new = plan(rec)
            if new is None:
                return rec, False
            if await self._call(self.records.swap, rec.rev if rec else None, new):
                return new, True
        log.warning("escalation changed under us repeatedly; next tick retries", incident=iid)
        return None, False

    async def _flush(
        self,
        items: list[tuple[EscalationRecord, Incident]],
        on_topic: set[_PageKey] | None = None,
    ) -> None:
        """Publish the records' outboxes (but the pages ``on_topic`` already), then remove
        them from the outboxes. A failed publish leaves them to be claimed after the lease."""
        skip = on_topic or set()
        events, found = [], 0
        for rec, incident in items:
            for page in rec.outbox:
                if (page.triggered, page.cycle, page.step) in skip:
                    found += 1
                else:
                    events.append(escalated_event(incident, page))
        if not events and not found:
            return
        try:
            await self.send(events)
        except Exception as exc:
            log.warning("escalated events not published; retrying", error=str(exc))
            return
        if found:
            log.warning("escalation pages found published already", pages=found)
        for ev in events:
            esc = ev.escalation
            assert esc is not None
            self.metrics.escalation_paged(esc.step)
            log.info(
                "escalated",
                incident=ev.incident.id,
                step=esc.step,
                cycle=esc.cycle,
                paged=[p.person for p in esc.paged],
            )
        published = {rec.incident: list(rec.outbox) for rec, _ in items}
        writes = [(rec.rev, sent(rec, published[rec.incident])) for rec, _ in items]
        todo = [(rev, new) for rev, new in writes if new is not None]
        landed = await self._call(self.records.swap_many, todo)
        for (_, new), ok in zip(todo, landed, strict=True):
            if not ok:  # the record moved on meanwhile (an ack, the end): remove them there
                await self._update(new.incident, _without(published[new.incident]))

    async def tick(self, owners: list[str], now: float | None = None) -> None:
        """Page what is due in ``owners``' escalations (and publish outboxes left over)."""
        if not owners:
            return
        now = time.time() if now is None else now
        try:
            due = await asyncio.to_thread(self.records.due, owners, now)
        except Exception as exc:  # Redis away: the next tick tries again
            log.debug("escalation due set unavailable", error=str(exc))
            return
        if not due:
            return
        at = datetime.fromtimestamp(now, UTC)
        async with self.lock:
            directory = await self._call(self._load_directory)
            for owner, ids in due.items():
                for iid in ids:
                    await self._due(directory, owner, iid, at)

    async def _stale(self, iid: str, at: datetime) -> bool:
        """The escalation has been due for over ``STALE_S`` (its incident is long gone)."""
        rec = (await self._call(self.records.load, [iid])).get(iid)
        due = rec.due if rec is not None else None
        return due is None or due < at.timestamp() - STALE_S

    async def _due(self, directory: Directory, owner: str, iid: str, at: datetime) -> None:
        incident = self.lookup(owner, iid)
        if incident is None:
            raw = await self._call(self.incident_record, iid)
            incident = _incident_decoder.decode(raw) if raw else None
        if incident is None and not await self._stale(iid, at):
            return  # published, its record not written yet (the next group commit does)
        if incident is None or incident.status.value == "resolved" or incident.merged_into:
            # the incident is gone or closed and its end was not seen: end it now
            rec, _ = await self._update(iid, _ended)
            if rec is None:
                await self._call(self.records.forget, owner, iid)
            self.known.discard(iid)
            return
        before: list[EscalationRecord] = []

        def advance(r: EscalationRecord | None) -> EscalationRecord | None:
            if r is None:
                return None
            before[:] = [r]
            return plan_tick(directory, r, at)

        rec, wrote = await self._update(iid, advance)
        if rec is None:
            await self._call(self.records.forget, owner, iid)
            return
        self.known.add(iid)
        if not wrote:  # not due after all, or another worker holds the lease on its pages
            return
        if before and before[0].status == "acknowledged" and rec.status == "escalating":
            self.metrics.escalation_changes.labels("retriggered").inc()
        if before and before[0].status != "exhausted" and rec.status == "exhausted":
            self.metrics.escalation_changes.labels("exhausted").inc()
        on_topic: set[_PageKey] = set()
        if before and before[0].outbox and self.check is not None:
            # pages of a worker whose lease ran out: it may have died right after sending
            since = before[0].lease - LEASE_S - CLOCK_SKEW_S
            try:
                on_topic = await asyncio.to_thread(self.check, iid, since)
            except Exception as exc:  # cannot tell: try again when the new lease runs out
                log.warning("reading back escalation pages failed", error=str(exc))
                return
        await self._flush([(rec, incident)], on_topic)


def _acked(directory: Directory, at: datetime) -> Plan:
    def plan(r: EscalationRecord | None) -> EscalationRecord | None:
        return plan_ack(directory, r, at) if r is not None else None

    return plan


def _without(pages: list[EscalationPage]) -> Plan:
    def plan(r: EscalationRecord | None) -> EscalationRecord | None:
        return sent(r, pages) if r is not None else None

    return plan


def _ended(r: EscalationRecord | None) -> EscalationRecord | None:
    return plan_end(r) if r is not None else None
