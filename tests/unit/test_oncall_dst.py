"""Schedules across daylight-saving changes, in three zones on both hemispheres.

Hand-offs keep their local wall time (GoAlert's and Grafana OnCall's rule): the shift that
spans a change is an hour shorter (spring forward) or longer (fall back); a hand-off inside
the skipped hour happens when the clocks jump; one inside the repeated hour happens at its
first occurrence. The properties: exactly one person per instant, no gaps, no overlaps.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.oncall.layers import RotationLayer
from pipeline.domain.oncall.overrides import Override
from pipeline.domain.oncall.restrictions import Window
from pipeline.domain.oncall.rotation import Rotation, ShiftLength
from pipeline.domain.oncall.schedule import Schedule, timeline, who
from pipeline.domain.oncall.wallclock import to_instant

H = timedelta(hours=1)
# the local hour repeated on the fall-back day
REPEATED = {"America/New_York": 1, "Europe/Berlin": 2, "Australia/Sydney": 2}
# zone, spring-forward date, fall-back date (2026), the local hour skipped in spring
ZONES = [
    ("America/New_York", datetime(2026, 3, 8), datetime(2026, 11, 1), 2),
    ("Europe/Berlin", datetime(2026, 3, 29), datetime(2026, 10, 25), 2),
    ("Australia/Sydney", datetime(2026, 10, 4), datetime(2026, 4, 5), 2),
]


def daily(
    zone: str, start: datetime, hour: int, people: tuple[str, ...] = ("a", "b", "c")
) -> Schedule:
    layer = RotationLayer(
        "primary", Rotation(start.replace(hour=hour), ShiftLength(1, "days"), people)
    )
    return Schedule("s", zone, (layer,))


def local(zone: str, *args: int) -> datetime:
    return to_instant(datetime(*args), ZoneInfo(zone))  # type: ignore[arg-type]


@pytest.mark.parametrize(("zone", "spring", "fall", "_"), ZONES)
def test_daily_handoff_keeps_its_wall_time_across_both_changes(
    zone: str, spring: datetime, fall: datetime, _: int
) -> None:
    tz = ZoneInfo(zone)
    for change, hours in ((spring, 23), (fall, 25)):
        sched = daily(zone, change - timedelta(days=10), 9)
        # the shift from 09:00 the day before the change to 09:00 on the day of it
        before = to_instant(change - timedelta(days=1) + 9 * H, tz)
        shift = who(sched, before)
        assert shift.until == to_instant(change + 9 * H, tz)
        assert shift.until.astimezone(tz).hour == 9
        # the shift over the change (09:00 the day before -> 09:00 on the day) ...
        over = who(sched, to_instant(change - timedelta(days=1) + 12 * H, tz))
        assert over.since == before
        assert (over.until - over.since) == hours * H  # type: ignore[operator]
        # ... and the next one is a plain 24 hours, 09:00 to 09:00 local
        after = who(sched, to_instant(change + 12 * H, tz))
        assert after.since is not None and after.until is not None
        assert after.since.astimezone(tz).hour == after.until.astimezone(tz).hour == 9
        assert after.until - after.since == 24 * H
        assert after.person != over.person


@pytest.mark.parametrize(("zone", "spring", "fall", "hour"), ZONES)
def test_handoff_inside_the_skipped_hour_happens_when_the_clocks_jump(
    zone: str, spring: datetime, fall: datetime, hour: int
) -> None:
    tz = ZoneInfo(zone)
    sched = daily(zone, spring - timedelta(days=3), hour)  # 02:00 does not exist that day
    start = spring.replace(minute=30) + timedelta(hours=hour)
    answer = who(sched, to_instant(start - timedelta(days=1), tz))
    assert answer.until is not None
    assert answer.until.astimezone(tz).replace(tzinfo=None) == spring + (hour + 1) * H
    # half past: a minute after the jump the next person holds, and the day after is 02:00
    nxt = who(sched, answer.until + timedelta(minutes=1))
    assert nxt.person != answer.person
    assert nxt.until is not None and nxt.until.astimezone(tz).hour == hour


@pytest.mark.parametrize(("zone", "spring", "fall", "_"), ZONES)
def test_handoff_inside_the_repeated_hour_happens_at_its_first_occurrence(
    zone: str, spring: datetime, fall: datetime, _: int
) -> None:
    tz = ZoneInfo(zone)
    wall = fall + REPEATED[zone] * H + timedelta(minutes=30)
    sched = Schedule(
        "s",
        zone,
        (
            RotationLayer(
                "p", Rotation(wall - timedelta(days=3), ShiftLength(1, "days"), ("a", "b"))
            ),
        ),
    )
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    assert second - first == H
    before = who(sched, first - timedelta(minutes=1))
    assert before.until == first
    assert who(sched, second).since == first  # the second 01:30 is not a hand-off


@pytest.mark.parametrize(("zone", "spring", "fall", "_"), ZONES)
@pytest.mark.parametrize("hours", [1, 8, 12])
def test_hourly_shifts_follow_wall_clock_hours(
    zone: str, spring: datetime, fall: datetime, _: int, hours: int
) -> None:
    tz = ZoneInfo(zone)
    for change in (spring, fall):
        sched = Schedule(
            "s",
            zone,
            (
                RotationLayer(
                    "p",
                    Rotation(
                        change - timedelta(days=2), ShiftLength(hours, "hours"), ("a", "b", "c")
                    ),
                ),
            ),
        )
        segments = timeline(
            sched,
            to_instant(change - timedelta(days=1), tz),
            to_instant(change + timedelta(days=2), tz),
        )
        for s in segments[1:-1]:
            if hours > 1:  # hand-offs at the same wall hours every day
                assert s.start.astimezone(tz).hour % hours == 0
        assert all(a.end == b.start for a, b in itertools.pairwise(segments))


INSTANTS = st.datetimes(min_value=datetime(2025, 1, 10), max_value=datetime(2027, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


def _total_schedule(zone: str, hour: int, minute: int, unit: str, count: int) -> Schedule:
    """Three layers and overrides; the lowest layer has one person who never takes leave,
    so the schedule is total."""
    tz = ZoneInfo(zone)
    top = RotationLayer(
        "business-hours",
        Rotation(datetime(2025, 1, 6, hour, minute), ShiftLength(count, unit), ("a", "b", "c")),  # type: ignore[arg-type]
        (Window.daily(frozenset(range(5)), time(hour, minute), time((hour + 8) % 24, minute)),),
    )
    base = RotationLayer(
        "base", Rotation(datetime(2025, 1, 6, hour, minute), ShiftLength(1, "weeks"), ("d", "e"))
    )
    backstop = RotationLayer(
        "backstop", Rotation(datetime(2025, 1, 6), ShiftLength(1, "weeks"), ("z",))
    )
    overrides = (
        Override(
            "leave",
            "leave",
            "d",
            to_instant(datetime(2026, 3, 1), tz),
            to_instant(datetime(2026, 4, 15), tz),
        ),
        Override(
            "cover",
            "cover",
            "f",
            to_instant(datetime(2026, 10, 20), tz),
            to_instant(datetime(2026, 11, 10), tz),
            other="a",
        ),
    )
    return Schedule("total", zone, (top, base, backstop), overrides)


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from([z[0] for z in ZONES]),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 30]),
    unit=st.sampled_from(["hours", "days", "weeks"]),
    count=st.integers(1, 3),
    at=INSTANTS,
    span=st.integers(1, 24 * 20),
)
def test_a_total_schedule_has_exactly_one_person_at_every_instant(
    zone: str, hour: int, minute: int, unit: str, count: int, at: datetime, span: int
) -> None:
    sched = _total_schedule(zone, hour, minute, unit, count)
    end = at + span * H
    segments = timeline(sched, at, end)
    # no gaps, no overlaps: the segments tile [at, end) exactly ...
    assert segments[0].start == at and segments[-1].end == end
    for a, b in itertools.pairwise(segments):
        assert a.end == b.start and a.start < a.end
    # ... with one person each
    for s in segments:
        assert s.person is not None
    # and who() agrees with the timeline at each segment's start and just before its end
    for s in segments[:5]:
        for t in (s.start, s.end - timedelta(microseconds=1)):
            answer = who(sched, t)
            assert answer.person == s.person
            assert answer.until is None or answer.until > t
            if answer.until is not None:  # until is where the person really changes
                assert who(sched, answer.until).person != answer.person
            assert answer.since is None or answer.since <= t


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from([z[0] for z in ZONES]), hour=st.integers(0, 23), at=INSTANTS)
def test_daily_rotation_hands_off_at_local_wall_time_every_day(
    zone: str, hour: int, at: datetime
) -> None:
    tz = ZoneInfo(zone)
    sched = daily(zone, datetime(2025, 1, 1), hour)
    answer = who(sched, at)
    assert answer.since is not None and answer.until is not None
    for edge in (answer.since, answer.until):
        wall = edge.astimezone(tz)
        # at the hand-off hour, or at the jump when that hour was skipped that day
        assert wall.hour == hour or to_instant(wall.replace(tzinfo=None, hour=hour), tz) == edge
    assert timedelta(hours=22) <= answer.until - answer.since <= timedelta(hours=26)


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from([z[0] for z in ZONES]),
    unit=st.sampled_from(["hours", "days", "weeks"]),
    count=st.integers(1, 12),
    hour=st.integers(0, 23),
    at=INSTANTS,
)
def test_rotation_shifts_tile_time(
    zone: str, unit: str, count: int, hour: int, at: datetime
) -> None:
    tz = ZoneInfo(zone)
    rotation = Rotation(datetime(2025, 3, 3, hour), ShiftLength(count, unit), ("a", "b", "c"))  # type: ignore[arg-type]
    shift = rotation.shift_at(at, tz)
    assert shift.start <= at < shift.end
    after = rotation.shift_at(shift.end, tz)
    assert after.start == shift.end and after.index > shift.index
    assert rotation.shift_at(shift.start - timedelta(microseconds=1), tz).end == shift.start
    assert shift.person == ("a", "b", "c")[shift.index % 3]


def test_an_hourly_shift_inside_the_skipped_hour_is_empty() -> None:
    tz = ZoneInfo("America/New_York")
    rotation = Rotation(datetime(2026, 3, 7, 0, 0), ShiftLength(1, "hours"), ("a", "b", "c"))
    sched = Schedule("s", "America/New_York", (RotationLayer("p", rotation),))
    spring = datetime(2026, 3, 8)
    segments = timeline(sched, to_instant(spring, tz), to_instant(spring + 4 * H, tz))
    walls = [(s.start.astimezone(tz).hour, s.person) for s in segments]
    # turn 50 (02:00-03:00 on the wall) does not exist: 01:00 -> 03:00 skips its person
    assert walls == [(0, "a"), (1, "b"), (3, "a")]


def _near_a_change(t: datetime, tz: ZoneInfo) -> bool:
    return (t - 3 * H).astimezone(tz).utcoffset() != (t + 3 * H).astimezone(tz).utcoffset()


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from([z[0] for z in ZONES]),
    hour=st.integers(0, 23),
    unit=st.sampled_from(["hours", "days", "weeks"]),
    count=st.integers(1, 3),
    window_start=st.integers(0, 23),
    window_hours=st.integers(1, 24),
    days=st.frozensets(st.integers(0, 6), min_size=1),
    at=INSTANTS,
)
def test_who_matches_a_wall_clock_oracle_away_from_changes(
    zone: str,
    hour: int,
    unit: str,
    count: int,
    window_start: int,
    window_hours: int,
    days: frozenset[int],
    at: datetime,
) -> None:
    """Away from DST changes, wall-clock arithmetic alone says who is on call: turn
    ``floor((wall - start) / length)`` of the top layer when the wall time is inside one of
    its windows, else the base layer's turn."""
    tz = ZoneInfo(zone)
    if _near_a_change(at, tz):
        return
    start = datetime(2025, 1, 6, hour)
    length = ShiftLength(count, unit)  # type: ignore[arg-type]
    top = RotationLayer(
        "top",
        Rotation(start, length, ("a", "b", "c")),
        (Window(days, time(window_start), timedelta(hours=window_hours)),),
    )
    base = RotationLayer("base", Rotation(start, ShiftLength(1, "weeks"), ("x", "y")))
    sched = Schedule("s", zone, (top, base))
    wall = at.astimezone(tz).replace(tzinfo=None)
    inside = any(
        (d := wall.date() - timedelta(days=back)).weekday() in days
        and datetime.combine(d, time(window_start))
        <= wall
        < datetime.combine(d, time(window_start)) + timedelta(hours=window_hours)
        for back in (0, 1)
    )
    if inside:
        expected = ("a", "b", "c")[((wall - start) // length.wall) % 3]
    else:
        expected = ("x", "y")[((wall - start) // timedelta(weeks=1)) % 2]
    assert who(sched, at).person == expected
