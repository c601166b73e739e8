"""The partitioned offline replay: k = 1 is today's replay, byte for byte; with k > 1 every
alert single-domain replay places is in exactly one incident; the CLI's ``--domains``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from benchmarks.correlation import load_rca
from pipeline.cli import app
from pipeline.domain.domains import DomainMap, build_domain_map
from pipeline.domain.schemas import Alert, AlertStatus, Severity
from pipeline.domain.topology import Topology
from pipeline.offline.partitioned import replay_partitioned
from pipeline.offline.replay import incident_record, read_alerts, replay_alerts

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "pipeline" / "data" / "sample-storm.jsonl"
BOUTIQUE = ROOT / "pipeline" / "data" / "online-boutique.yaml"


def _records(incidents: list) -> str:
    return json.dumps([incident_record(i) for i in incidents], default=str)


def test_one_domain_is_todays_replay_on_the_sample_storm_and_rca_dev() -> None:
    topo = Topology.load(BOUTIQUE)
    alerts = list(read_alerts(SAMPLE))
    plain = replay_alerts(topo, alerts)
    assert _records(replay_partitioned(topo, alerts, build_domain_map(topo, 1))) == _records(plain)
    rca_topo, rca_alerts, _ = load_rca()
    assert _records(
        replay_partitioned(rca_topo, rca_alerts, build_domain_map(rca_topo, 1), step=100)
    ) == _records(replay_alerts(rca_topo, rca_alerts))


def test_replay_command_takes_domains(tmp_path: Path) -> None:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    base = ["replay", "--topology", str(BOUTIQUE), "--input", str(SAMPLE), "--no-progress"]
    assert CliRunner().invoke(app, [*base, "--output", str(one)]).exit_code == 0
    result = CliRunner().invoke(app, [*base, "--output", str(two), "--domains", "2"])
    assert result.exit_code == 0, result.output
    placed = [
        {a for line in p.read_text().splitlines() for a in json.loads(line)["alert_ids"]}
        for p in (one, two)
    ]
    assert placed[0] == placed[1]
    bad = CliRunner().invoke(app, [*base, "--output", str(two), "--domains", "zero"])
    assert bad.exit_code == 2 and "--domains" in bad.output


# a small connected topology split by hand into two domains
EDGES = [("a", "b"), ("b", "c"), ("c", "d"), ("e", "d"), ("f", "e"), ("f", "b"), ("g", "c")]
SMALL = Topology.from_edges("small", EDGES)
HALVES = DomainMap(
    version=1,
    k=2,
    topology="small",
    domains={s: "small/a" if s in "abcg" else "small/d" for s in "abcdefg"},
    partitions={"small/a": 0, "small/d": 1},
)
T0 = datetime(2024, 5, 1, tzinfo=UTC)

_event = st.tuples(
    st.sampled_from("abcdefgx"),  # x: not in the topology
    st.sampled_from(["ErrorRateHigh", "HighLatencyP99", "CPUSaturation"]),
    st.integers(0, 30),  # seconds after the previous event
    st.booleans(),  # resolved
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_event, min_size=1, max_size=40), st.sampled_from([1, 3, 1000]))
def test_every_placed_alert_is_in_exactly_one_incident(events: list, step: int) -> None:
    alerts, t = [], 0.0
    for i, (service, name, gap, resolved) in enumerate(events):
        t += gap * 10
        alerts.append(
            Alert(
                id=f"a{i}",
                source="prop",
                service=service,
                name=name,
                severity=Severity.error,
                status=AlertStatus.resolved if resolved else AlertStatus.firing,
                timestamp=T0 + timedelta(seconds=t),
            )
        )
    single = replay_alerts(SMALL, alerts)
    merged = replay_partitioned(SMALL, alerts, HALVES, step=step)
    ids = [a for inc in merged for a in inc.alert_ids]
    assert len(ids) == len(set(ids))
    assert set(ids) == {a for inc in single for a in inc.alert_ids}


@pytest.mark.parametrize("k", [2, 3])
def test_split_rca_dev_places_every_alert_once(k: int) -> None:
    topo, alerts, _ = load_rca()
    single = replay_alerts(topo, alerts)
    merged = replay_partitioned(topo, alerts, build_domain_map(topo, k))
    ids = [a for inc in merged for a in inc.alert_ids]
    assert len(ids) == len(set(ids)) == sum(len(i.alert_ids) for i in single)
