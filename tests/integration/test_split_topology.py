"""One connected topology split into two correlation domains, correlated by two workers: the
merge stage unites per-domain incidents as one correlator would have (grouping close to
replay's single-domain grouping, every alert in exactly one incident), says so in the
explanation, and is the only writer of ``incidents``; its group events carry the runbook like
the per-domain ones."""

from __future__ import annotations

import math
import signal
import urllib.request

import msgspec

from benchmarks.grouping import group_of, pair_score
from benchmarks.storm import generate, topology_yaml
from benchmarks.streaming.metrics import parse_metrics
from pipeline.adapters.oncall_store import OnCallStore
from pipeline.app.localstack import free_port
from pipeline.domain.normalize import normalize
from pipeline.domain.oncall import parse_directory
from pipeline.domain.schemas import IncidentEvent
from pipeline.offline.replay import replay_alerts
from tests.integration.conftest import (
    Stack,
    collect,
    covered_alerts,
    drain,
    incident_of_each_alert,
    wait_for,
)

decode_event = msgspec.json.Decoder(IncidentEvent).decode


def test_two_workers_on_two_domains_group_as_one_correlator(stack: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    storm = generate(4000, services=200, components=1)
    stack.topology = tmp_path / "topology.yaml"
    stack.topology.write_text(topology_yaml(storm.topology))
    alerts = [a for _, value in storm.messages for a in normalize(value)]
    expected = replay_alerts(storm.topology, alerts)
    expected_alerts = {aid for inc in expected for aid in inc.alert_ids}

    # every service owned by one team whose policy pages one person: the merge stage, the
    # only writer of `incidents`, escalates what it publishes, once per incident
    OnCallStore(stack.redis(), f"{stack.ns}:").replace(
        parse_directory(
            {
                "people": {"op": {}},
                "teams": {"ops": {"members": ["op"], "escalation_policy": "ops"}},
                "services": {name: "ops" for name in storm.topology.services},
                "escalation_policies": {
                    "ops": {"steps": [{"delay": "1h", "targets": [{"person": "op"}]}]}
                },
            },
            "test on-call",
        )
    )
    books = tmp_path / "runbooks"  # one runbook for every incident: group events carry it too
    books.mkdir()
    (books / "triage.yaml").write_text("id: triage\ntitle: Triage\nmode: suggest\n")
    env = {"STORMWATCH_REMEDIATION__RUNBOOKS": str(books)}
    workers = [
        stack.start_worker(extra_env=env, domains="2", web_port=str(port))
        for port in (free_port(), free_port())
    ]
    incidents = stack.consumer("incidents")
    stack.produce_keyed("alerts.raw", [value for _, value in storm.messages])
    store = stack.store()

    seen = collect(incidents, lambda seen: expected_alerts <= covered_alerts(store, seen), 180)
    seen += drain(incidents, quiet_s=5)
    assert all(w.poll() is None for w in workers), "a worker exited"
    member_of = incident_of_each_alert(store, seen)
    assert set(member_of) == expected_alerts
    groups: dict[str, list[str]] = {}
    for aid, iid in member_of.items():
        groups.setdefault(iid, []).append(aid)
    score = pair_score(group_of(inc.alert_ids for inc in expected), group_of(groups.values()))
    assert score.f1 >= 0.95, score
    explained = [
        decode_event(m.value()).incident.explanation
        for m in seen
        if decode_event(m.value()).incident.explanation.startswith("Merged across 2")
    ]
    assert explained, "no incident was merged across domains"
    pages = [
        (ev.incident.id, ev.escalation.step)
        for ev in map(decode_event, (m.value() for m in seen))
        if ev.escalation is not None
    ]
    assert pages and len(pages) == len(set(pages)), "no escalation, or one paged twice"
    runbooks = {
        (ev.incident.runbook.id if ev.incident.runbook else None)
        for ev in map(decode_event, (m.value() for m in seen))
        if not ev.incident.merged_into
    }
    assert runbooks == {"triage"}, runbooks
    # the split is stored for every worker, versioned
    assert store.load_checkpoint("domains") is not None


def test_ingest_processes_share_their_marks_through_redis(stack: Stack) -> None:
    """Each ingest process reports its raw partitions and reads everyone's in one call."""
    store = stack.store()
    first = store.share_ingest_marks({0: (1000.5, True), 1: (-math.inf, True)}, 50.0)
    assert first == {0: (1000.5, True, 50.0), 1: (-math.inf, True, 50.0)}
    other = store.share_ingest_marks({2: (7.0, False)}, 51.0)
    assert other == {**first, 2: (7.0, False, 51.0)}
    assert store.share_ingest_marks({}, 52.0) == other


def _runs_merge_stage(port: int) -> bool:
    samples = parse_metrics(
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    )
    return any(name == "stormwatch_merge_stage_owned" and v == 1 for name, _, v in samples)


def _merge_lag(port: int) -> float | None:
    """The worker's lag metric for the merge topic (None: it does not watch that topic)."""
    samples = parse_metrics(
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    )
    return next(
        (
            v
            for name, labels, v in samples
            if name == "stormwatch_consumer_lag_messages"
            and labels.get("topic", "").endswith("-incidents-by-domain")
        ),
        None,
    )


def test_merge_stage_moves_to_the_survivor_when_its_worker_dies(stack: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The merge stage reads its topic through a consumer group of its own: the worker that
    runs it is killed mid-storm (SIGKILL, nothing handed over), the other takes the stage over
    from its Redis checkpoint and every alert still ends in exactly one incident."""
    storm = generate(4000, services=200, components=1)
    stack.topology = tmp_path / "topology.yaml"
    stack.topology.write_text(topology_yaml(storm.topology))
    alerts = [a for _, value in storm.messages for a in normalize(value)]
    expected_alerts = {
        aid for inc in replay_alerts(storm.topology, alerts) for aid in inc.alert_ids
    }
    ports = [free_port(), free_port()]
    workers = [stack.start_worker(domains="2", web_port=str(port)) for port in ports]
    incidents = stack.consumer("incidents")
    values = [value for _, value in storm.messages]
    half = len(values) // 2
    stack.produce_keyed("alerts.raw", values[:half])
    [owner] = wait_for(  # a list: index 0 would not count as found
        lambda: next(([i] for i, port in enumerate(ports) if _runs_merge_stage(port)), None),
        60,
        "a worker running the merge stage",
    )
    seen = collect(incidents, lambda seen: len(seen) > 0, 120)  # the stage has published
    stack.stop_worker(workers[owner], signal.SIGKILL)
    survivor = 1 - owner
    stack.produce_keyed("alerts.raw", values[half:])
    wait_for(lambda: _runs_merge_stage(ports[survivor]) or None, 60, "the stage moving over")
    store = stack.store()

    seen += collect(
        incidents, lambda more: expected_alerts <= covered_alerts(store, seen + more), 180
    )
    seen += drain(incidents, quiet_s=5)
    assert workers[survivor].poll() is None, "the surviving worker exited"
    member_of = incident_of_each_alert(store, seen)
    assert set(member_of) == expected_alerts
    # the merge topic, read outside Faust's consumer, is watched by the stage's new owner:
    # its lag shows, and reaches 0 once the stage has caught up
    wait_for(lambda: _merge_lag(ports[survivor]) == 0 or None, 30, "the merge topic's lag")
