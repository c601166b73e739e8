"""Who is on call: layers, restrictions, overrides, the file format and its errors."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.domain.oncall import (
    Directory,
    OnCallConfigError,
    dump_directory,
    parse_directory,
    timeline,
    who,
)
from pipeline.domain.oncall.config import parse_override

FIXTURE = Path(__file__).parents[1] / "fixtures" / "oncall" / "oncall.yaml"


def load() -> Directory:
    return parse_directory(yaml.safe_load(FIXTURE.read_text()), str(FIXTURE))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_higher_layer_wins_inside_its_restrictions_and_the_lower_one_outside() -> None:
    d = load()
    # daily turns count every day (alice Mar 2, bob Mar 3, ...): Monday Mar 9 is bob's
    day = d.who("payments", at("2026-03-09T10:00-04:00"))[0]
    assert (day.person, day.layer, day.source) == ("bob", "business-hours", "layer")
    assert day.since == at("2026-03-09T09:00-04:00")
    assert day.until == at("2026-03-09T17:00-04:00")
    assert "restricted to mon,tue,wed,thu,fri 09:00-17:00" in day.reason
    night = d.who("payments", at("2026-03-09T18:00-04:00"))[0]
    # week 2 of follow-the-sun (carol, alice, bob) is alice's; Tuesday's business hours are
    # alice's too, so she holds until Wednesday 09:00 (until: the next change of person)
    assert (night.person, night.layer) == ("alice", "follow-the-sun")
    assert night.since == at("2026-03-09T17:00-04:00")
    assert night.until == at("2026-03-11T09:00-04:00")


def test_leave_falls_through_to_the_next_layer_with_someone() -> None:
    d = load()
    answer = d.who("payments", at("2026-03-03T20:00-05:00"))[0]  # carol's week, on leave
    assert answer.person is None and answer.source == "nobody"
    assert "carol on leave (carol-leave)" in answer.reason
    after = d.who("payments", at("2026-03-05T20:00-05:00"))[0]
    assert after.person == "carol"


def test_swap_and_cover_overrides() -> None:
    d = load()
    s = d.schedule("payments-primary")
    tz = s.tz
    swap = parse_override(
        {
            "id": "sw",
            "kind": "swap",
            "person": "alice",
            "other": "bob",
            "start": "2026-03-09T00:00",
            "end": "2026-03-11T00:00",
        },
        "o",
        tz,
    )
    cover = parse_override(
        {
            "id": "cv",
            "kind": "cover",
            "person": "dave",
            "other": "bob",
            "start": "2026-03-10T12:00",
            "end": "2026-03-10T13:00",
        },
        "o",
        tz,
    )
    s2 = type(s)(s.name, s.time_zone, s.layers, (*s.overrides, swap, cover))
    monday = who(s2, at("2026-03-09T10:00-04:00"))  # bob's day becomes alice's
    assert (monday.person, monday.override, monday.source) == ("alice", "sw", "override")
    assert who(s2, at("2026-03-10T10:00-04:00")).person == "bob"  # alice's becomes bob's
    # the cover replaces bob only, and bob holds Tuesday noon after the swap
    noon = who(s2, at("2026-03-10T12:30-04:00"))
    assert (noon.person, noon.override) == ("dave", "cv")
    assert noon.until == at("2026-03-10T13:00-04:00")
    assert "instead of bob" in noon.reason
    # a cover without 'other' takes whoever would be on call
    cover2 = parse_override(
        {
            "id": "cv2",
            "kind": "cover",
            "person": "erin",
            "start": "2026-03-09T12:00",
            "end": "2026-03-09T13:00",
        },
        "o",
        tz,
    )
    s3 = type(s)(s.name, s.time_zone, s.layers, (*s2.overrides, cover2))
    assert who(s3, at("2026-03-09T12:15-04:00")).person == "erin"
    assert who(s3, at("2026-03-09T13:00-04:00")).person == "alice"


def test_timeline_tiles_and_merges() -> None:
    s = load().schedule("web-business-hours")
    start = datetime(2026, 3, 27, tzinfo=UTC)
    segments = timeline(s, start, start + timedelta(days=4))  # Berlin springs forward on 29th
    assert segments[0].start == start and segments[-1].end == start + timedelta(days=4)
    assert all(a.end == b.start and a.person != b.person for a, b in itertools.pairwise(segments))
    hours = {(s.start.astimezone(s.start.tzinfo).hour) for s in segments[1:]}
    assert hours == {7, 19, 6, 18}  # 08:00 and 20:00 Berlin, CET then CEST


def test_night_restriction_crosses_midnight() -> None:
    d = load()
    night = who(d.schedule("web-nights"), at("2026-03-10T02:00+11:00"))
    assert night.person == "erin" and night.until == at("2026-03-10T08:00+11:00")
    day = who(d.schedule("web-nights"), at("2026-03-10T12:00+11:00"))
    assert day.person is None and day.until == at("2026-03-10T20:00+11:00")


def test_dump_and_parse_round_trip() -> None:
    d = load()
    assert parse_directory(dump_directory(d)) == d


def test_topology_team_wins_over_the_ownership_file() -> None:
    data = yaml.safe_load(FIXTURE.read_text())
    d = parse_directory(data, "f", topology_owners={"frontend": "payments"})
    assert d.owner("frontend") == "payments" and d.owner("paymentservice") == "payments"


def _broken(path: str, value: Any) -> dict[str, Any]:
    data = yaml.safe_load(FIXTURE.read_text())
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "schedules.payments-primary.time_zone",
            "Mars/Olympus",
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            "schedules.payments-primary.layers.0.shift",
            "3 fortnights",
            "not a shift length like 12h",
        ),
        ("schedules.payments-primary.layers.0.start", "next monday", "not an ISO 8601 time"),
        (
            "schedules.payments-primary.layers.0.participants",
            ["alice", "zed"],
            "'zed' is not in people",
        ),
        (
            "schedules.payments-primary.layers.0.restrictions",
            [{"days": ["funday"], "start": "09:00", "end": "10:00"}],
            "'funday' is not a weekday",
        ),
        ("teams.web.schedules", ["nope"], "names schedule 'nope', which is not defined"),
        ("services.frontend", "ghosts", "owned by unknown team 'ghosts'"),
        ("teams.web.escalation_policy", "loud", "names escalation policy 'loud', which is not"),
        (
            "escalation_policies.payments.steps",
            [{"delay": "5m", "targets": [{"team": "x"}]}],
            "unknown team 'x'",
        ),
        (
            "schedules.payments-primary.overrides",
            [
                {
                    "id": "x",
                    "kind": "vacation",
                    "person": "bob",
                    "start": "2026-01-01T00:00",
                    "end": "2026-01-02T00:00",
                }
            ],
            "'vacation' is not one of leave, swap, cover",
        ),
        (
            "schedules.payments-primary.overrides",
            [
                {
                    "id": "x",
                    "kind": "leave",
                    "person": "bob",
                    "start": "2026-01-02T00:00",
                    "end": "2026-01-01T00:00",
                }
            ],
            "ends before it starts",
        ),
    ],
)
def test_errors_are_one_line_and_say_where(path: str, value: Any, message: str) -> None:
    with pytest.raises(OnCallConfigError) as info:
        parse_directory(_broken(path, value), "oncall.yaml")
    text = str(info.value)
    assert message in text and text.startswith("oncall.yaml") and "\n" not in text


def test_yaml_dates_and_timestamps_are_read_as_times() -> None:
    data = yaml.safe_load(FIXTURE.read_text())
    layers = data["schedules"]["payments-primary"]["layers"]
    layers[0]["start"] = yaml.safe_load("2026-03-02")  # a date: midnight wall time
    layers[1]["start"] = yaml.safe_load("2026-03-02 14:00:00Z")  # UTC: 09:00 in New York
    s = parse_directory(data).schedule("payments-primary")
    assert s.layers[0].rotation.start == datetime(2026, 3, 2)  # type: ignore[attr-defined]
    assert s.layers[1].rotation.start == datetime(2026, 3, 2, 9)  # type: ignore[attr-defined]
