"""Escalation records as the worker runs them: start, due steps, ack, ack timeout, end,
the outbox, and which events start or end an escalation (pure; no Redis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import yaml

from pipeline.domain.oncall import Directory, parse_directory
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
    EventType,
    Incident,
    IncidentEvent,
    IncidentStatus,
    encode,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "oncall" / "oncall.yaml"
decode_event = msgspec.json.Decoder(IncidentEvent).decode
T0 = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)  # Monday 12:00 in New York: bob on call
M = timedelta(minutes=1)


def directory() -> Directory:
    return parse_directory(yaml.safe_load(FIXTURE.read_text()), str(FIXTURE))


def incident(root: str | None = "paymentservice", **kw: object) -> Incident:
    fields: dict[str, object] = {"status": IncidentStatus.open, **kw}
    return Incident(id="inc-1", opened_at=T0, updated_at=T0, root_cause=root, **fields)  # type: ignore[arg-type]


def started() -> EscalationRecord:
    rec = plan_start(directory(), incident(), "3", T0, None)
    assert isinstance(rec, EscalationRecord)
    return rec


def test_start_pages_the_first_step_with_who_and_why() -> None:
    rec = started()
    assert (rec.team, rec.policy, rec.owner, rec.status, rec.rev) == (
        "payments",
        "payments",
        "3",
        "escalating",
        1,
    )
    assert rec.next_at == (T0 + 5 * M).timestamp()
    # the page waits in the outbox, the starter's to publish: due when its lease runs out
    assert rec.lease == T0.timestamp() + LEASE_S and rec.due == rec.lease
    [page] = rec.outbox
    assert (page.step, page.steps, page.cycle, page.triggered) == (1, 3, 1, 1)
    assert page.due_at == T0 and page.next_at == T0 + 5 * M
    [bob] = page.paged
    assert (bob.person, bob.name, bob.target) == ("bob", "Bob Brown", "schedule:payments-primary")
    assert "business-hours" in bob.reason and bob.contacts == {"email": "bob@example.com"}


def test_no_escalation_without_an_owning_teams_policy() -> None:
    d = directory()
    assert team_policy(d, incident(None)) == "no root cause named yet"
    assert team_policy(d, incident("adservice")) == "adservice has no owning team"
    assert team_policy(d, incident("frontend")) == "team web has no escalation policy"
    assert plan_start(d, incident("frontend"), "0", T0, None) == "team web has no escalation policy"


def test_a_stored_escalation_is_not_started_again_unless_reopened_after_it_ended() -> None:
    d, rec = directory(), started()
    assert plan_start(d, incident(), "3", T0 + M, rec) == "already escalating"
    assert plan_start(d, incident(), "3", T0 + M, rec, reopened=True) == "already escalating"
    ended = plan_end(rec)
    assert ended is not None and ended.status == "resolved" and ended.due is None
    again = plan_start(d, incident(), "3", T0 + 9 * M, ended, reopened=True)
    assert isinstance(again, EscalationRecord)
    assert (again.status, again.triggered, again.rev) == ("escalating", 2, ended.rev + 1)


def test_due_steps_page_in_order_and_a_late_owner_catches_up() -> None:
    d = directory()
    rec = sent(started(), started().outbox)
    assert rec is not None and rec.outbox == [] and rec.due == rec.next_at
    assert plan_tick(d, rec, T0 + 4 * M) is None  # not due yet
    late = plan_tick(d, rec, T0 + 16 * M)  # steps 2 (at +5) and 3 (at +15) are due
    assert late is not None
    assert [(p.step, p.due_at) for p in late.outbox] == [(2, T0 + 5 * M), (3, T0 + 15 * M)]
    assert late.outbox[0].next_at == T0 + 15 * M  # the page right behind it
    assert [p.person for p in late.outbox[0].paged] == ["alice"]  # round robin: first turn
    assert late.next_at == (T0 + 30 * M).timestamp()


def test_ack_stops_the_ack_timeout_retriggers_and_resolution_ends() -> None:
    d = directory()
    rec = sent(started(), started().outbox)
    assert rec is not None
    acked = plan_ack(d, rec, T0 + 2 * M)
    assert acked is not None and acked.status == "acknowledged"
    assert acked.next_at == (T0 + 32 * M).timestamp()  # ack_timeout 30m
    assert plan_tick(d, acked, T0 + 31 * M) is None
    again = plan_tick(d, acked, T0 + 32 * M)
    assert again is not None and again.status == "escalating" and again.triggered == 2
    assert [(p.step, p.triggered) for p in again.outbox] == [(1, 2)]
    ended = plan_end(again)
    assert ended is not None and ended.outbox == [] and ended.due is None
    assert plan_end(ended) is None and plan_ack(d, ended, T0) is None


def test_sent_removes_only_the_published_pages() -> None:
    d = directory()
    rec = plan_tick(d, sent(started(), started().outbox), T0 + 16 * M)  # type: ignore[arg-type]
    assert rec is not None
    first = rec.outbox[:1]
    left = sent(rec, first)
    assert left is not None and left.outbox == rec.outbox[1:] and left.rev == rec.rev + 1
    assert sent(left, first) is None  # published twice: nothing more to remove


def test_a_removed_policy_ends_the_escalation_and_an_edited_one_is_met() -> None:
    rec = msgspec.structs.replace(started(), outbox=[], step=7)
    d = directory()
    shorter = Directory(d.people, d.teams, d.schedules, d.owners, {})
    gone = plan_tick(shorter, rec, T0 + 6 * M)
    assert gone is not None and gone.status == "exhausted" and gone.due is None
    clamped = plan_tick(d, rec, T0 + 6 * M)  # step 7 of a 3-step policy: the last, then round 2
    assert clamped is not None and [(p.step, p.cycle) for p in clamped.outbox] == [(1, 2)]


def test_which_events_start_or_end_an_escalation() -> None:
    ev = IncidentEvent(type=EventType.opened, incident=incident(), at=T0)
    assert wants_escalation(ev) and not ends_escalation(ev)
    quiet = IncidentEvent(type=EventType.opened, incident=incident(page=False), at=T0)
    assert not wants_escalation(quiet)
    acked = IncidentEvent(
        type=EventType.updated, incident=incident(status=IncidentStatus.acknowledged), at=T0
    )
    assert not wants_escalation(acked)
    done = IncidentEvent(
        type=EventType.resolved, incident=incident(status=IncidentStatus.resolved), at=T0
    )
    merged = IncidentEvent(type=EventType.merged, incident=incident(merged_into="inc-0"), at=T0)
    assert ends_escalation(done) and ends_escalation(merged)


def test_the_escalated_event_round_trips_on_the_wire() -> None:
    page = started().outbox[0]
    ev = escalated_event(incident(), page)
    assert ev.type is EventType.escalated and ev.at == T0
    assert ev.detail.startswith("escalation step 1/3 (pass 1) of policy payments for team")
    assert "paged Bob Brown" in ev.detail
    back = decode_event(encode(ev))
    assert back.escalation == page
    plain = decode_event(encode(IncidentEvent(type=EventType.opened, incident=incident(), at=T0)))
    assert plain.escalation is None


def test_pages_in_an_outbox_are_published_by_the_lease_holder_or_after_its_lease() -> None:
    d, rec = directory(), started()  # step 1 in the outbox, the starter's lease running
    assert plan_tick(d, rec, T0 + timedelta(seconds=LEASE_S - 1)) is None
    claimed = plan_tick(d, rec, T0 + timedelta(seconds=LEASE_S))  # the starter died
    assert claimed is not None and claimed.outbox == rec.outbox  # no step is due: same pages
    assert claimed.lease == T0.timestamp() + 2 * LEASE_S and claimed.rev == rec.rev + 1
    # an outbox left over when the next step falls due: both go out, under one new lease
    both = plan_tick(d, rec, T0 + 5 * M)
    assert both is not None and [p.step for p in both.outbox] == [1, 2]
