"""The worker on a real broker and a real Redis (both started by the fixtures)."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import msgspec

from pipeline.app.localstack import free_port, start_redis
from pipeline.domain.schemas import DeadLetter, Incident, IncidentEvent
from pipeline.domain.topology import Topology
from pipeline.offline.replay import read_alerts, replay_alerts
from tests.integration.conftest import ROOT, Stack, collect, drain, wait_for

decode_event = msgspec.json.Decoder(IncidentEvent).decode
STORM = ROOT / "pipeline" / "data" / "sample-storm.jsonl"


def _events(messages: list) -> list[IncidentEvent]:
    return [decode_event(m.value()) for m in messages]


def test_alertmanager_payload_becomes_incident(stack: Stack, fixtures: Path) -> None:
    stack.start_worker()
    incidents = stack.consumer("incidents")
    stack.produce("alerts.raw", [(fixtures / "webhook_1.json").read_bytes()])
    messages = collect(incidents, lambda seen: len(seen) >= 1, 60)
    ev = decode_event(messages[0].value())
    assert ev.type.value == "opened"
    assert messages[0].key() == ev.incident.id.encode()
    assert ev.incident.services == ["checkoutservice"]
    assert ev.incident.root_cause == "checkoutservice"
    assert len(ev.incident.alert_ids) == 1
    # the incident is stored in Redis (by the group commit after the event went out, within
    # commit_interval_s) and counted in /metrics
    key = f"{stack.ns}:inc:{ev.incident.id}"
    wait_for(lambda: stack.redis().get(key), 30, "the incident's record in Redis")
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.web_port}/metrics") as resp:
        body = resp.read().decode()
    assert 'stormwatch_incident_events_total{type="opened"} 1.0' in body
    assert "stormwatch_stage_seconds_bucket" in body
    # the loop-lag probe has woken at least once (it sleeps 50 ms per observation)
    lag_count = re.search(r"^stormwatch_event_loop_lag_seconds_count (\S+)$", body, re.M)
    assert lag_count is not None and float(lag_count.group(1)) >= 1
    # Faust's own table router and table reads are not served
    for path in ("/router/", "/table/"):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{stack.web_port}{path}")
            raise AssertionError(f"{path} is served")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404, (path, exc.code)


def test_malformed_messages_go_to_dlq_and_worker_continues(stack: Stack, fixtures: Path) -> None:
    stack.start_worker()
    dlq = stack.consumer("alerts.dlq")
    incidents = stack.consumer("incidents")
    bad = [b"{not json", json.dumps({"id": "x", "severity": "nope"}).encode()]
    stack.produce("alerts.raw", bad, key=b"k1")
    stack.produce("alerts.raw", [(fixtures / "webhook_2.json").read_bytes()])
    letters = collect(dlq, lambda seen: len(seen) >= 2, 60)
    assert sorted(m.value() for m in letters) == sorted(bad)
    info = [DeadLetter.from_headers(m.headers()) for m in letters]
    assert {i.stage for i in info} == {"normalize"}
    assert {i.error for i in info} == {"decode", "invalid"}
    assert all(i.source_topic == stack.topic("alerts.raw") and i.source_offset >= 0 for i in info)
    assert all(m.key() == b"k1" for m in letters)
    [ev] = _events(collect(incidents, lambda seen: len(seen) >= 1, 60))
    assert ev.incident.services == ["frontend"]


def _final_incidents(messages: list) -> dict[str, Incident]:
    final: dict[str, Incident] = {}
    for ev in _events(messages):
        final[ev.incident.id] = ev.incident
    return {iid: inc for iid, inc in final.items() if not inc.merged_into}


def _assert_each_alert_in_one_incident(messages: list, expected_alerts: set[str]) -> None:
    member_of: dict[str, str] = {}
    for inc in _final_incidents(messages).values():
        for aid in inc.alert_ids:
            assert aid not in member_of, f"alert {aid} in {member_of.get(aid)} and {inc.id}"
            member_of[aid] = inc.id
    assert set(member_of) == expected_alerts


def _covered(messages: list) -> set[str]:
    return {aid for inc in _final_incidents(messages).values() for aid in inc.alert_ids}


def test_restart_neither_loses_nor_duplicates_incidents(stack: Stack) -> None:
    lines = [line for line in STORM.read_bytes().splitlines() if line.strip()]
    half = len(lines) // 2
    expected = replay_alerts(Topology.load(stack.topology), read_alerts(STORM))
    expected_alerts = {aid for inc in expected for aid in inc.alert_ids}
    worker = stack.start_worker()
    incidents = stack.consumer("incidents")
    stack.produce_keyed("alerts.raw", lines[:half])
    first = collect(incidents, lambda seen: len(seen) >= 1, 60)
    first += drain(incidents, quiet_s=3)
    stack.stop_worker(worker, signal.SIGTERM)
    stack.produce_keyed("alerts.raw", lines[half:])
    stack.start_worker()
    second = collect(incidents, lambda seen: expected_alerts <= _covered(first + seen), 90)
    second += drain(incidents, quiet_s=3)
    messages = first + second

    _assert_each_alert_in_one_incident(messages, expected_alerts)
    opened = [ev.incident.id for ev in _events(messages) if ev.type.value == "opened"]
    assert len(opened) == len(set(opened)), "an incident was opened twice"


def _never_resolved(lines: list[bytes]) -> set[str]:
    """Ids of the storm's firing alerts that no later resolution ends."""
    firing: dict[str, str] = {}
    for line in lines:
        alert = json.loads(line)
        series = json.dumps([alert["service"], alert["labels"]], sort_keys=True)
        if alert["status"] == "firing":
            firing[series] = alert["id"]
        else:
            firing.pop(series, None)
    return set(firing.values())


def test_crash_before_the_state_is_written_loses_no_alert(stack: Stack) -> None:
    lines = [line for line in STORM.read_bytes().splitlines() if line.strip()]
    half = len(lines) // 2
    expected = replay_alerts(Topology.load(stack.topology), read_alerts(STORM))
    expected_alerts = {aid for inc in expected for aid in inc.alert_ids}
    # nothing is written to Redis or acknowledged within a minute: the kill loses it all
    worker = stack.start_worker(commit_interval_s="60")
    incidents = stack.consumer("incidents")
    # one partition, in event-time order: the restarted worker regroups the first half from
    # scratch, and only the same order gives the same incidents as the killed worker published
    # (over several partitions a step sorts whatever its messages hold, so different step
    # boundaries can group differently and leave the killed worker's version on the topic)
    stack.produce("alerts.raw", lines[:half], key=b"one-partition")
    first = collect(incidents, lambda seen: len(seen) >= 1, 60)
    first += drain(incidents, quiet_s=3)  # Kafka's offset commit (every second) has run
    stack.stop_worker(worker, signal.SIGKILL)
    stack.produce("alerts.raw", lines[half:], key=b"one-partition")
    stack.start_worker()
    second = collect(incidents, lambda seen: expected_alerts <= _covered(first + seen), 90)
    second += drain(incidents, quiet_s=3)

    _assert_each_alert_in_one_incident(first + second, expected_alerts)
    # a resolution in the second half finds its alert's incident: the state survived
    still_firing = {
        ref.id
        for inc in _final_incidents(first + second).values()
        for ref in inc.alerts
        if ref.status.value == "firing"
    }
    assert still_firing == _never_resolved(lines)


def test_split_roles_ingest_and_correlate_in_two_processes(stack: Stack, fixtures: Path) -> None:
    stack.start_worker(roles="ingest,feedback,metrics", web_port=str(free_port()))
    stack.start_worker(roles="correlate")
    incidents = stack.consumer("incidents")
    stack.produce("alerts.raw", [(fixtures / "webhook_1.json").read_bytes()])
    [ev] = _events(collect(incidents, lambda seen: len(seen) >= 1, 60))
    assert ev.type.value == "opened"
    assert ev.incident.root_cause == "checkoutservice"
    # only the correlating process counts deduplicated alerts
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.web_port}/metrics") as resp:
        body = resp.read().decode()
    assert 'stormwatch_stage_items_total{outcome="ok",stage="dedup"} 1.0' in body


def test_backpressure_pauses_ingest_on_a_backlog_and_loses_nothing(stack: Stack) -> None:
    lines = [line for line in STORM.read_bytes().splitlines() if line.strip()]
    expected = replay_alerts(Topology.load(stack.topology), read_alerts(STORM))
    expected_alerts = {aid for inc in expected for aid in inc.alert_ids}
    stack.produce_keyed("alerts.raw", lines)  # a backlog before the worker starts
    stack.start_worker(max_ingest_ahead="20", batch_size="10")
    incidents = stack.consumer("incidents")
    collect(incidents, lambda seen: expected_alerts <= _covered(seen), 90)
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.web_port}/metrics") as resp:
        body = resp.read().decode()
    pauses = next(
        float(line.split()[-1])
        for line in body.splitlines()
        if line.startswith("stormwatch_ingest_pauses_total ")
    )
    assert pauses > 0, "ingest never paused for correlation"


def test_a_redis_outage_holds_alerts_back_and_loses_none(stack: Stack, tmp_path: Path) -> None:
    lines = [line for line in STORM.read_bytes().splitlines() if line.strip()]
    half = len(lines) // 2
    expected = replay_alerts(Topology.load(stack.topology), read_alerts(STORM))
    expected_alerts = {aid for inc in expected for aid in inc.alert_ids}
    own = start_redis(workdir=tmp_path)  # this test's own Redis: it is killed and restarted
    stack.redis_url = own.url
    try:
        worker = stack.start_worker()
        incidents = stack.consumer("incidents")
        stack.produce_keyed("alerts.raw", lines[:half])
        first = collect(incidents, lambda seen: len(seen) >= 1, 60)
        first += drain(incidents, quiet_s=3)  # written: the restarted Redis loads this
        stack.redis().save()
        own.proc.kill()
        own.proc.wait()
        stack.produce_keyed("alerts.raw", lines[half:])
        time.sleep(4)  # correlate steps wait for Redis meanwhile
        assert worker.poll() is None, "the worker exited while Redis was down"
        own = start_redis(own.port, workdir=tmp_path)
        second = collect(incidents, lambda seen: expected_alerts <= _covered(first + seen), 90)
        second += drain(incidents, quiet_s=3)
        assert worker.poll() is None
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.web_port}/metrics") as resp:
            body = resp.read().decode()
    finally:
        own.stop()
    _assert_each_alert_in_one_incident(first + second, expected_alerts)
    assert 'stormwatch_store_retries_total{during="dedup"}' in body


def test_worker_groups_a_backlog_exactly_as_replay_does(stack: Stack) -> None:
    """Under the event clock the worker ticks in the alerts' own time within a step, so a
    storm read as a backlog is grouped (and ranked) as ``python -m pipeline replay`` does,
    given the same order: one key puts the whole storm in one partition (across partitions
    Kafka keeps no order, and a reader far ahead in one of them makes alerts late)."""
    lines = [line for line in STORM.read_bytes().splitlines() if line.strip()]
    expected = replay_alerts(Topology.load(stack.topology), read_alerts(STORM))
    expected_alerts = {aid for inc in expected for aid in inc.alert_ids}
    stack.produce("alerts.raw", lines, key=b"one-partition")
    stack.start_worker()
    incidents = stack.consumer("incidents")
    seen = collect(incidents, lambda seen: expected_alerts <= _covered(seen), 90)
    seen += drain(incidents, quiet_s=3)
    got = {frozenset(inc.alert_ids): inc.root_cause for inc in _final_incidents(seen).values()}
    want = {frozenset(inc.alert_ids): inc.root_cause for inc in expected}
    assert got == want
