"""Group commit bookkeeping: what a write carries, what stays visible, what a failure keeps."""

from pipeline.app.commits import Unsaved, overlay


def test_take_moves_everything_into_one_write_and_resets() -> None:
    u = Unsaved()
    u.record(0, dedup={"a": "firing"}, incidents={"i1": b"v1"}, offset=5)
    u.record(0, dedup={"a": "resolved"}, incidents={"i1": b"v2"}, closed=["i1"], offset=7)
    u.record(1, offset=3)
    u.add_messages(["m1", "m2"])
    batch = u.take()
    assert not u
    assert batch.messages == ["m1", "m2"]
    assert batch.changes[0].dedup == {"a": "resolved"}
    assert batch.changes[0].incidents == {"i1": b"v2"}
    assert batch.changes[0].closed == {"i1"}
    assert batch.changes[0].offset == 7
    assert set(batch.changes) == {0, 1}


def test_an_incident_published_again_after_closing_is_open_again() -> None:
    u = Unsaved()
    u.record(0, incidents={"i1": b"resolved"}, closed=["i1"])
    u.record(0, incidents={"i1": b"reopened"})
    assert u.take().changes[0].closed == set()


def test_dedup_states_of_writes_in_flight_stay_visible_until_they_land() -> None:
    u = Unsaved()
    u.record(0, dedup={"a": "firing", "b": "firing"})
    batch = u.take()
    u.record(0, dedup={"b": "resolved"})
    view = u.dedup_view()  # taken before the Redis read
    u.landed(batch)  # the write lands while Redis is read: the read may predate it
    known = overlay({"a": None, "b": None, "c": "firing"}, view)
    assert known == {"a": "firing", "b": "resolved", "c": "firing"}
    assert overlay({"a": None}, u.dedup_view()) == {"a": None}


def test_a_failed_write_goes_back_under_newer_changes() -> None:
    u = Unsaved()
    u.record(0, dedup={"a": "firing", "b": "firing"}, incidents={"i1": b"v1"}, offset=4)
    u.add_messages(["m1"])
    batch = u.take()
    u.record(0, dedup={"b": "resolved"}, incidents={"i1": b"v2"}, offset=9)
    u.add_messages(["m2"])
    u.failed(batch)
    assert not u.in_flight
    retry = u.take()
    assert retry.messages == ["m1", "m2"]
    ch = retry.changes[0]
    assert ch.dedup == {"a": "firing", "b": "resolved"}
    assert ch.incidents == {"i1": b"v2"}
    assert ch.offset == 9
