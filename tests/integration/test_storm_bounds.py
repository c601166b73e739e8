"""A storm on one connected topology whose incidents outgrow the broker's message limit: the
worker keeps running, every event stays within the bound, and the full membership is in
Redis with every alert in exactly one incident. (Before bounded events, the first event of a
big incident was refused as MSG_SIZE_TOO_LARGE and the worker exited with code 70, again on
every restart.)"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import msgspec

from benchmarks.storm import generate, topology_yaml
from pipeline.domain.normalize import normalize
from pipeline.domain.schemas import IncidentEvent
from pipeline.offline.replay import replay_alerts
from tests.integration.conftest import (
    ROOT,
    Stack,
    collect,
    covered_alerts,
    drain,
    final_incidents,
    incident_of_each_alert,
)

MAX_EVENT_BYTES = 8192


def test_a_storm_bigger_than_the_message_limit_keeps_the_worker_running(
    stack: Stack, tmp_path: Path
) -> None:
    storm = generate(3000, services=150, components=1)
    stack.topology = tmp_path / "topology.yaml"
    stack.topology.write_text(topology_yaml(storm.topology))
    alerts = [a for _, value in storm.messages for a in normalize(value)]
    expected = replay_alerts(storm.topology, alerts)
    expected_alerts = {aid for inc in expected for aid in inc.alert_ids}
    biggest = max(expected, key=lambda inc: len(inc.alert_ids))
    full = msgspec.json.encode(
        IncidentEvent(type="updated", incident=biggest, at=biggest.updated_at)
    )
    assert len(full) > 4 * MAX_EVENT_BYTES, "the storm is too small to test the bound"

    worker = stack.start_worker(
        extra_env={"STORMWATCH_TOPICS__MAX_MESSAGE_BYTES": str(MAX_EVENT_BYTES)},
        max_event_bytes=str(MAX_EVENT_BYTES),
        max_event_alerts="20",
    )
    incidents = stack.consumer("incidents")
    stack.produce_keyed("alerts.raw", [value for _, value in storm.messages])
    store = stack.store()

    seen = collect(incidents, lambda seen: expected_alerts <= covered_alerts(store, seen), 120)
    seen += drain(incidents, quiet_s=3)
    assert worker.poll() is None, "the worker exited"
    assert max(len(m.value()) for m in seen) <= MAX_EVENT_BYTES
    member_of = incident_of_each_alert(store, seen)
    assert set(member_of) == expected_alerts
    # closed incidents expire from Redis; open ones do not
    r = stack.redis()
    resolved = [inc.id for inc in final_incidents(seen).values() if inc.status.value == "resolved"]
    assert resolved, "no incident resolved: the expiry is not tested"
    for iid in resolved:
        assert r.ttl(f"{stack.ns}:inc:{iid}") > 0 and r.ttl(f"{stack.ns}:mem:{iid}") > 0
    big = max(final_incidents(seen).values(), key=lambda inc: inc.alert_count)
    assert big.alert_count > 20 and big.alerts_omitted == big.alert_count - len(big.alert_ids)
    # the worker serves the whole incident, members and all
    url = f"http://127.0.0.1:{stack.web_port}/incidents/{big.id}"
    with urllib.request.urlopen(url) as resp:
        doc = json.loads(resp.read())
    assert sorted(doc["members"]) == sorted(aid for aid, iid in member_of.items() if iid == big.id)
    # and so does the command line, reading Redis directly
    env = stack.worker_env()
    shown = subprocess.run(
        [sys.executable, "-m", "pipeline", "incident", "show", big.id],
        env=env,
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    assert json.loads(shown.stdout)["members"] == doc["members"]
    missing = subprocess.run(
        [sys.executable, "-m", "pipeline", "incident", "show", "inc-nope"],
        env=env,
        capture_output=True,
        cwd=ROOT,
    )
    assert missing.returncode == 2 and b"no incident 'inc-nope'" in missing.stderr
    assert b"Traceback" not in missing.stderr
