"""Runbooks matched on labels from the published incident: the root cause's common labels
on incident events (bounded), the annotate stage's choice, the remediation engine matching
and selecting on them without labels from the caller, the merge stage's group events, and
``replay`` carrying the runbook."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.domain.correlate.labels import (
    MAX_CHARS,
    MAX_PAIRS,
    MAX_VALUE,
    absorb,
    add_alert,
    bounded,
    of_members,
)
from pipeline.domain.event_view import EventLimits, encode_event
from pipeline.domain.pipeline import AlertPipeline
from pipeline.domain.remediation.actions import ActionKind
from pipeline.domain.remediation.matching import RunbookIndex, facts_of
from pipeline.domain.remediation.runbook import runbook_from_dict
from pipeline.domain.remediation.targets import inventory_from_dict
from pipeline.domain.schemas import (
    Alert,
    Incident,
    IncidentEvent,
    to_builtins,
)
from pipeline.domain.topology import Topology
from tests.unit.test_merge import Recorder, split
from tests.unit.test_merge import alert as merge_alert
from tests.unit.test_remediation_engine import engine, kinds

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
TOPO = Topology.from_edges("chain", [("a", "b"), ("b", "c"), ("c", "d")])

PROD_RESTART = runbook_from_dict(
    {
        "id": "prod-restart",
        "title": "Restart in prod",
        "mode": "auto",
        "match": {"labels": {"env": "prod"}, "alert_names": ["ProcessDown"]},
        "steps": [{"id": "restart", "action": "process.restart", "select": "alerting"}],
        "guards": {"max_share": 1.0, "min_score": 0.0},
    }
)


def alert(aid: str, service: str, dt: float, name: str = "ProcessDown", **labels: str) -> Alert:
    return msgspec.structs.replace(merge_alert(aid, service, name, dt), labels=labels)


def last(events: list[IncidentEvent], iid: str | None = None) -> Incident:
    return [ev.incident for ev in events if iid is None or ev.incident.id == iid][-1]


def published(inc: Incident) -> Incident:
    """The incident as it went out (events carry the live one, which later alerts change)."""
    return msgspec.json.decode(msgspec.json.encode(inc), type=Incident)


def test_common_labels_are_bounded_and_only_shrink() -> None:
    many = {f"k{i:02d}": "v" for i in range(40)}
    assert list(bounded(many)) == [f"k{i:02d}" for i in range(MAX_PAIRS)]
    long = {"a": "x" * (MAX_VALUE + 1), "b": "ok"}
    assert bounded(long) == {"b": "ok"}  # left out, never cut
    wide = {f"k{i}": "y" * MAX_VALUE for i in range(10)}
    assert sum(len(k) + len(v) for k, v in bounded(wide).items()) <= MAX_CHARS
    per: dict[str, dict[str, str]] = {}
    add_alert(per, "s", {"env": "prod", "pod": "p1"})
    first = per["s"]
    add_alert(per, "s", {"env": "prod", "pod": "p1", "extra": "x"})
    assert per["s"] is first  # unchanged: the same set
    add_alert(per, "s", {"env": "prod", "pod": "p2"})
    assert per["s"] == {"env": "prod"} and first == {"env": "prod", "pod": "p1"}
    other = {"s": {"env": "dev"}, "t": {"zone": "z"}}
    absorb(per, other)
    assert per == {"s": {}, "t": {"zone": "z"}}
    assert of_members("s", [("s", ["s"], {"env": "prod"}), ("s", ["s", "t"], {"env": "prod"})]) == {
        "env": "prod"
    }
    # a member whose own root differs knows nothing about the root's alerts: nothing claimed
    assert of_members("s", [("s", ["s"], {"env": "prod"}), ("t", ["s", "t"], {})]) == {}


def test_incident_events_carry_the_root_causes_common_labels() -> None:
    pipe = AlertPipeline(TOPO)
    events = pipe.process_in_event_time(
        [
            alert("1", "d", 0, env="prod", program="d-1", pod="x"),
            alert("2", "d", 5, env="prod", program="d-1", pod="y"),
            alert("3", "c", 10, name="ErrorRateHigh", env="dev", team="c"),
        ],
        {},
    ).events
    inc = last(events)
    assert inc.root_cause == "d"
    assert inc.common_labels == {"env": "prod", "program": "d-1"}
    # within the event-size bound, and carried on the wire
    data = encode_event(events[-1], EventLimits(max_bytes=4096))
    assert b'"common_labels":{"env":"prod","program":"d-1"}' in data
    # a checkpoint keeps them
    again = AlertPipeline(TOPO)
    again.restore(pipe.snapshot())
    later = again.process_in_event_time([alert("4", "d", 20, env="prod", program="d-1")], {})
    assert last(later.events).common_labels == {"env": "prod", "program": "d-1"}


def test_merged_incidents_keep_only_labels_both_sides_share() -> None:
    pipe = AlertPipeline(TOPO)
    out = pipe.process_in_event_time(
        [
            alert("1", "d", 0, env="prod", zone="z1"),
            alert("2", "b", 1, name="ErrorRateHigh"),
            alert("3", "c", 2, name="ErrorRateHigh"),  # links both
            alert("4", "d", 3, env="prod", zone="z2"),
        ],
        {},
    )
    (inc,) = [i for i in pipe.correlator.incidents() if not i.merged_into]
    assert inc.root_cause == "d" and last(out.events, inc.id).common_labels == {"env": "prod"}


def test_annotate_stage_and_engine_match_on_labels_from_the_event() -> None:
    index = RunbookIndex([PROD_RESTART], TOPO)
    pipe = AlertPipeline(TOPO, runbooks=index)
    prod = published(last(pipe.process([alert("1", "d", 0, env="prod", program="d-1")], {}).events))
    dev = last(pipe.process([alert("2", "a", 7200, env="dev", program="a-1")], {}).events)
    assert prod.runbook is not None and prod.runbook.id == "prod-restart"
    assert dev.runbook is None
    assert facts_of(prod).labels == {"env": ["prod"], "program": ["d-1"]}
    # a later alert of the root cause without the pair: the runbook no longer fits
    again = last(pipe.process([alert("3", "d", 5, env="dev", program="d-1")], {}).events)
    assert again.id == prod.id and again.common_labels == {"program": "d-1"}
    assert again.runbook is None
    # the remediation process gets the published incident only: it matches and selects
    inv = inventory_from_dict(
        {
            "services": {
                "d": {"supervisor": {"url": "http://127.0.0.1:1/RPC2", "programs": ["d-0", "d-1"]}}
            }
        }
    )
    eng, ex, _ = engine(PROD_RESTART)
    eng.inventory = inv
    out = eng.on_incident(prod, now=0)
    assert kinds(out) == ["proposed", "dry_run", "executed"]
    assert [(c.kind, c.target.selected) for c in ex.real] == [
        (ActionKind.process_restart, ("d-1",))
    ]
    eng2, ex2, _ = engine(PROD_RESTART)
    eng2.inventory = inv
    assert eng2.on_incident(dev, now=0) == [] and ex2.calls == []


def test_merge_stage_group_events_carry_the_runbook_and_labels() -> None:
    book = runbook_from_dict(
        {
            "id": "d-down",
            "title": "d is down",
            "match": {"services": ["d"], "labels": {"env": "prod"}},
        }
    )
    alerts = [
        alert("1", "d", 0, name="CPUSaturation", env="prod"),
        alert("2", "c", 10, name="ErrorRateHigh"),
        alert("3", "b", 20, name="HighLatencyP99"),
        alert("4", "a", 30, name="HighLatencyP99"),
    ]
    run = Recorder(TOPO, split(TOPO, ["a", "b"], ["c", "d"]))
    run.runbooks = index = RunbookIndex([book], TOPO)
    run.merger.runbooks = index
    (inc,) = run.run(alerts)
    groups = [ev for ev in run.published if ev.incident.explanation.startswith("Merged across")]
    assert groups, "the alerts were merged across the two domains"
    for ev in groups:
        assert ev.incident.root_cause == "d"
        assert ev.incident.common_labels == {"env": "prod"}
        assert ev.incident.runbook is not None and ev.incident.runbook.id == "d-down"
    assert inc.runbook is not None and inc.runbook.id == "d-down"


def test_merge_stage_group_events_carry_recommended_responders() -> None:
    from pipeline.domain.schemas import ResponderRef

    seen: list[str] = []

    def recommend(inc: Incident) -> list[ResponderRef]:
        seen.append(inc.id)
        return [ResponderRef(person="erin", score=0.9, reason=f"owns {inc.root_cause}")]

    alerts = [
        alert("1", "d", 0, name="CPUSaturation"),
        alert("2", "c", 10, name="ErrorRateHigh"),
        alert("3", "b", 20, name="HighLatencyP99"),
        alert("4", "a", 30, name="HighLatencyP99"),
    ]
    run = Recorder(TOPO, split(TOPO, ["a", "b"], ["c", "d"]))
    run.merger.responders = recommend
    run.run(alerts)
    groups = [ev for ev in run.published if ev.incident.explanation.startswith("Merged across")]
    assert groups, "the alerts were merged across the two domains"
    for ev in groups:
        assert [r.person for r in ev.incident.responders] == ["erin"]
        assert ev.incident.responders[0].reason == "owns d"
    assert seen


def test_replay_output_carries_the_runbook(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    alerts = tmp_path / "alerts.jsonl"
    down = alert("1", "cartservice", 0, instance="cart-1")
    alerts.write_text(json.dumps(to_builtins(down)) + "\n")
    out = tmp_path / "incidents.jsonl"
    args = ["replay", "--topology", str(root / "topologies" / "online-boutique.yaml")]
    args += ["--input", str(alerts), "--output", str(out), "--no-progress"]
    env = {"STORMWATCH_REMEDIATION__RUNBOOKS": str(root / "runbooks")}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert line["runbook"]["id"] == "restart-crashed-process"
    assert line["common_labels"] == {"instance": "cart-1"}
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text("id: x\ntitle: x\nmode: sometimes\n")
    result = CliRunner().invoke(app, args, env={"STORMWATCH_REMEDIATION__RUNBOOKS": str(bad)})
    assert result.exit_code == 2
    assert "x.yaml" in result.output and "Traceback" not in result.output
