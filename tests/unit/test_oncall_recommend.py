"""Responder recommendation: availability as a hard constraint, online learning from
resolutions, load spreading, reasons, checkpoints, and the cached on-call view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pipeline.domain.oncall import Directory, parse_directory, who
from pipeline.domain.oncall.recommend import Recommender, RecommendSettings
from pipeline.domain.oncall.recommend_input import IncidentSummary, features, tokens
from pipeline.domain.oncall.recommend_load import PageLoad, gini
from pipeline.domain.oncall.recommend_oncall import OnCallView
from pipeline.domain.schemas import AlertCount, Incident, IncidentStatus, RootCauseCandidate

FIXTURE = Path(__file__).parents[1] / "fixtures" / "oncall" / "oncall.yaml"
# Monday 12:00 in New York: bob (payments, primary), dave (web, primary), erin (web nights)
T0 = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)


def directory() -> Directory:
    return parse_directory(yaml.safe_load(FIXTURE.read_text()), str(FIXTURE))


def incident(at: datetime = T0, named: tuple[str, ...] = ()) -> IncidentSummary:
    return IncidentSummary(
        id="i-1",
        at=at,
        root_cause="paymentservice",
        candidates=("paymentservice", "frontend"),
        services=("frontend", "paymentservice"),
        alert_names=("HighLatencyP99",),
        text="p99 latency 2.3s on paymentservice",
        named=named,
    )


def test_before_any_feedback_the_owning_teams_primary_comes_first() -> None:
    view = OnCallView(directory())
    ranked = Recommender().recommend(incident(), view)
    assert [r.person for r in ranked] == ["bob", "dave", "erin"]
    assert ranked[0].reason.startswith("no similar resolutions yet; on call (primary) for")
    assert "until 2026-03-09 21:00 UTC" in ranked[0].reason


def test_only_people_on_call_are_recommended_however_expert() -> None:
    view = OnCallView(directory())
    rec = Recommender()
    # carol resolves paymentservice incidents on Sunday (she is on call then) ...
    sunday = T0 - timedelta(days=1)
    assert "carol" in view.duties(sunday)
    for _ in range(10):
        rec.learn(incident(sunday), "carol", view)
    assert rec.recommend(incident(sunday), view)[0].person == "carol"
    # ... and is off call on Monday noon: never recommended then
    assert "carol" not in view.duties(T0)
    assert "carol" not in [r.person for r in rec.recommend(incident(), view)]


def test_a_resolution_moves_the_resolver_up_at_once() -> None:
    view = OnCallView(directory())
    rec = Recommender()
    rec.learn(incident(T0 - timedelta(days=2)), "erin", view)
    ranked = rec.recommend(incident(), view)
    assert ranked[0].person == "erin"
    assert ranked[0].reason.startswith("resolved 1 similar paymentservice incident in 30 days;")
    assert ranked[0].score > ranked[1].score


def test_expertise_is_per_service_not_a_global_favourite() -> None:
    view = OnCallView(directory())
    rec = Recommender()
    for day in range(1, 6):
        rec.learn(incident(T0 - timedelta(days=day)), "erin", view)
        other = IncidentSummary(
            "i-2", T0 - timedelta(days=day), "frontend", ("frontend",), ("frontend",), ("Err5xx",)
        )
        rec.learn(other, "dave", view)
    frontend = IncidentSummary("i-3", T0, "frontend", ("frontend",), ("frontend",), ("Err5xx",))
    assert rec.recommend(frontend, view)[0].person == "dave"
    assert rec.recommend(incident(), view)[0].person == "erin"


def test_people_named_by_an_escalation_step_are_available_off_call() -> None:
    view = OnCallView(directory())
    ranked = Recommender().recommend(incident(named=("alice",)), view)
    assert ranked[0].person == "alice"
    assert ranked[0].duty is None
    assert "named by the escalation step" in ranked[0].reason


def test_recent_pages_spread_the_load_between_equal_fits() -> None:
    view = OnCallView(directory())
    rec = Recommender(RecommendSettings(load_penalty=0.5))
    for minutes in (10, 20, 30):
        rec.note_paged("bob", T0 - timedelta(minutes=minutes))
    ranked = rec.recommend(incident(), view)
    assert ranked[0].person == "dave"
    bob = next(r for r in ranked if r.person == "bob")
    assert bob.score == pytest.approx(0.5 / 2.5)
    assert "paged 3x in the last 24 h" in bob.reason
    # a day later the pages no longer count
    assert rec.load.factor("bob", T0 + timedelta(days=1)) == 1.0


def test_checkpoint_round_trip_keeps_what_was_learned() -> None:
    view = OnCallView(directory())
    rec = Recommender()
    rec.learn(incident(T0 - timedelta(days=1)), "erin", view)
    rec.note_paged("erin", T0 - timedelta(hours=1))
    again = Recommender.loads(rec.dumps())
    assert again.recommend(incident(), view) == rec.recommend(incident(), view)
    with pytest.raises(ValueError, match="not a recommender checkpoint"):
        Recommender.loads(__import__("pickle").dumps({"x": 1}))


def test_nobody_on_call_means_no_recommendation() -> None:
    view = OnCallView(directory())
    unowned = IncidentSummary("i-9", T0, "mystery", ("mystery",), ("mystery",))
    assert Recommender().recommend(unowned, view) == []


def test_graph_neighbours_bring_their_owners_in() -> None:
    view = OnCallView(directory())
    lonely = IncidentSummary("i-9", T0, "cartservice", ("cartservice",), ("cartservice",))
    ranked = Recommender().recommend(lonely, view, lambda s: ["checkoutservice"])
    assert [r.person for r in ranked] == ["bob"]


@pytest.mark.parametrize("prepared", [False, True])
def test_the_view_agrees_with_who_at_every_instant(prepared: bool) -> None:
    d = directory()
    view = OnCallView(d)
    if prepared:  # timelines over part of the span: answers inside and outside it
        view.prepare(datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC))
    t = datetime(2026, 3, 1, tzinfo=UTC)
    while t < datetime(2026, 3, 20, tzinfo=UTC):
        on_call = view.duties(t)
        for name, schedule in d.schedules.items():
            truth = who(schedule, t)
            listed = [x for ds in on_call.values() for x in ds if x.schedule == name]
            assert {x.hold.person for x in listed} == ({truth.person} if truth.person else set())
            assert all(x.hold.until == truth.until for x in listed), (name, t)
        t += timedelta(minutes=47)


def test_summary_of_an_incident_and_its_features() -> None:
    inc = Incident(
        id="i-7",
        status=IncidentStatus.open,
        opened_at=T0,
        updated_at=T0,
        services=["frontend", "paymentservice"],
        root_cause="paymentservice",
        root_cause_candidates=[RootCauseCandidate(service="paymentservice", score=0.9)],
        alert_counts=[AlertCount(service="paymentservice", name="HighLatencyP99", count=3)],
        explanation="Root cause paymentservice: latency rose first",
    )
    s = IncidentSummary.of(inc)
    assert (s.root_cause, s.alert_names, s.at) == ("paymentservice", ("HighLatencyP99",), T0)
    x = features(s)
    assert x["rc:paymentservice"] == 1.0 and x["alert:HighLatencyP99"] == 1.0
    assert "tok:latency" in x and "tok:root" not in x
    assert tokens("The DB is DOWN, db down!") == ["down"]


def test_load_window_and_gini() -> None:
    load = PageLoad(timedelta(hours=1), penalty=1.0)
    load.note("a", T0)
    assert load.factor("a", T0 + timedelta(minutes=30)) == 0.5
    assert load.factor("a", T0 + timedelta(hours=2)) == 1.0
    assert gini([]) == 0.0 and gini([0, 0]) == 0.0
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 12]) == pytest.approx(0.75)
