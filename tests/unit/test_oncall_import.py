"""iCalendar and PagerDuty imports on real-shaped files, and the iCalendar feeds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
import pytest
import recurring_ical_events
import yaml

from pipeline.domain.oncall import Directory, parse_directory, timeline, who
from pipeline.domain.oncall.config import dump_schedule, parse_schedule
from pipeline.domain.oncall.ical import IcalError, export_ical, import_ical
from pipeline.domain.oncall.pagerduty import PagerDutyImportError, import_pagerduty

FIXTURES = Path(__file__).parents[1] / "fixtures" / "oncall"


def directory() -> Directory:
    path = FIXTURES / "oncall.yaml"
    return parse_directory(yaml.safe_load(path.read_text()), str(path))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def google_schedule() -> object:
    ics = (FIXTURES / "google-sre-berlin.ics").read_text()
    return import_ical(ics, "sre-berlin", "Europe/Berlin", directory().people)


def test_ical_import_follows_rrule_exdate_moved_instances_and_dst() -> None:
    s = google_schedule()
    # Dave's first week (ATTENDEE mailto matched to his email handle)
    assert who(s, at("2026-03-04T12:00+01:00")).person == "dave"
    erin = who(s, at("2026-03-10T12:00+01:00"))
    assert erin.person == "erin" and erin.until == at("2026-03-16T10:00+01:00")
    # Erin's Mar 23 turn was moved to start Tuesday: Monday 10:00 to Tuesday 10:00 is open
    gap = who(s, at("2026-03-23T12:00+01:00"))
    assert gap.person is None and gap.until == at("2026-03-24T10:00+01:00")
    # the moved instance ends Monday 10:00 CEST: Berlin sprang forward on Mar 29
    moved = who(s, at("2026-03-25T12:00+01:00"))
    assert moved.person == "erin" and moved.until == at("2026-03-30T00:00+02:00")
    # EXDATE removed Dave's Mar 30 turn; Carol's all-day event (SUMMARY = her id) holds,
    # midnight to midnight in the schedule's zone
    carol = who(s, at("2026-04-01T12:00+02:00"))
    assert carol.person == "carol" and carol.until == at("2026-04-06T00:00+02:00")
    # the series goes on: Erin again from Apr 6 10:00, Dave from Apr 13 10:00 CEST
    assert who(s, at("2026-04-06T11:00+02:00")).person == "erin"
    assert who(s, at("2026-04-13T10:00+02:00")).person == "dave"


def test_ical_layer_is_stored_and_read_back() -> None:
    s = google_schedule()
    again = parse_schedule("sre-berlin", dump_schedule(s), "x", directory().people)  # type: ignore[arg-type]
    t = at("2026-04-01T12:00+02:00")
    assert who(again, t) == who(s, t)  # type: ignore[arg-type]


def test_ical_import_refuses_unknown_people_and_broken_files() -> None:
    ics = (FIXTURES / "google-sre-berlin.ics").read_text().replace("SUMMARY:carol", "SUMMARY:zed")
    with pytest.raises(IcalError, match=r"names nobody known \(zed\)"):
        import_ical(ics, "s", "Europe/Berlin", directory().people)
    with pytest.raises(IcalError, match="not an iCalendar file"):
        import_ical("hello", "s", "Europe/Berlin", directory().people)


def test_pagerduty_import_layers_restrictions_and_overrides() -> None:
    doc = json.loads((FIXTURES / "pagerduty-schedule.json").read_text())
    overrides = json.loads((FIXTURES / "pagerduty-overrides.json").read_text())
    s, new = import_pagerduty(doc, directory().people, overrides)
    assert s.name == "daily-engineering-rotation" and s.time_zone == "America/New_York"
    assert [layer.name for layer in s.layers] == ["Business hours", "Nights and weekends"]
    # Alice Adams is matched by name; the other two are new people with their PagerDuty ids
    assert {p.id: p.handles["pagerduty"] for p in new.values()} == {
        "regina-phalange": "PXPGF42",
        "kyler-kuhn": "PAM4FGS",
    }
    # Monday Mar 9 2026 (DST began Sunday): turn 35 of the daily layer from Feb 2 -> Kyler
    monday = who(s, at("2026-03-09T10:00-04:00"))
    assert (monday.person, monday.layer) == ("kyler-kuhn", "Business hours")
    assert monday.until == at("2026-03-09T12:00-04:00")  # the override starts
    override = who(s, at("2026-03-09T13:00-04:00"))
    assert (override.person, override.override) == ("alice", "PQ47DCP")
    # 18:00 local every evening across the change: nights layer, weekly turns from Feb 2
    night = who(s, at("2026-03-09T20:00-04:00"))
    assert (night.person, night.layer) == ("kyler-kuhn", "Nights and weekends")
    assert night.until == at("2026-03-10T09:00-04:00")
    # Saturday noon: the business layer is restricted to weekdays, nights to 18:00-09:00
    assert who(s, at("2026-03-14T12:00-04:00")).person is None


def test_pagerduty_import_names_the_broken_field() -> None:
    doc = json.loads((FIXTURES / "pagerduty-schedule.json").read_text())
    doc["schedule"]["schedule_layers"][1]["rotation_turn_length_seconds"] = 5400
    with pytest.raises(PagerDutyImportError, match=r"schedule_layers\[1\]: turns of 5400 s"):
        import_pagerduty(doc, {})
    del doc["schedule"]["time_zone"]
    with pytest.raises(PagerDutyImportError, match="missing 'time_zone'"):
        import_pagerduty(doc, {})


def test_export_feed_is_valid_icalendar_and_matches_the_timeline() -> None:
    d = directory()
    s = d.schedule("payments-primary")
    start = datetime(2026, 3, 2, tzinfo=UTC)
    end = start + timedelta(days=14)
    segments = timeline(s, start, end)
    stamp = datetime(2026, 3, 1, tzinfo=UTC)
    feed = export_ical("payments-primary", segments, d.people, stamp)
    cal = icalendar.Calendar.from_ical(feed)
    events = list(recurring_ical_events.of(cal).between(start, end))
    covered = [x for x in segments if x.person is not None]
    assert len(events) == len(covered)
    first = min(events, key=lambda e: e["DTSTART"].dt)
    assert first["DTSTART"].dt == covered[0].start
    assert str(first["ATTENDEE"]) == f"mailto:{d.people[covered[0].person].handles['email']}"  # type: ignore[index]
    # stable UIDs: the same export twice gives the same events
    assert export_ical("payments-primary", segments, d.people, stamp) == feed


def test_person_feed_lists_only_their_shifts() -> None:
    d = directory()
    start = datetime(2026, 3, 2, tzinfo=UTC)
    shifts = d.shifts_of("erin", start, start + timedelta(days=7))
    assert shifts and all(s.person == "erin" for s in shifts)
    assert {s.reason.split(":")[0] for s in shifts} == {"web-business-hours", "web-nights"}
    feed = export_ical("erin", shifts, d.people, start)
    assert feed.count(b"BEGIN:VEVENT") == len(shifts)
