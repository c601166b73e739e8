"""Runbooks, the action catalogue, matching and target resolution (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.domain.remediation.actions import ActionKind, ParamError, validate_params
from pipeline.domain.remediation.matching import facts_of, matches, matching
from pipeline.domain.remediation.runbook import (
    Mode,
    RunbookError,
    load_runbooks,
    runbook_from_dict,
)
from pipeline.domain.remediation.targets import (
    InventoryError,
    NoTarget,
    Selection,
    inventory_from_dict,
    load_inventory,
    resolve_target,
)
from pipeline.domain.schemas import (
    AlertCount,
    Incident,
    IncidentStatus,
    RootCauseCandidate,
    Severity,
)
from pipeline.domain.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def incident(
    root: str | None = "cartservice",
    names: tuple[str, ...] = ("ProcessDown",),
    severity: Severity = Severity.critical,
    candidates: tuple[tuple[str, float], ...] = (("cartservice", 0.9), ("frontend", 0.4)),
    firing: int = 1,
    status: IncidentStatus = IncidentStatus.open,
) -> Incident:
    return Incident(
        id="inc-1",
        status=status,
        opened_at=T0,
        updated_at=T0,
        severity=severity,
        root_cause=root,
        root_cause_candidates=[RootCauseCandidate(service=s, score=v) for s, v in candidates],
        alert_counts=[
            AlertCount(service=root or "x", name=n, count=1, firing=firing) for n in names
        ],
    )


BOOK = {
    "id": "restart",
    "title": "Restart",
    "mode": "auto",
    "match": {"alert_names": ["Process*"], "severity": ["critical"]},
    "steps": [{"id": "restart", "action": "process.restart", "select": "one"}],
}


def test_shipped_runbooks_and_inventory_load() -> None:
    books = load_runbooks(ROOT / "runbooks")
    assert {b.id for b in books} >= {"restart-crashed-process", "scale-out-latency", "cart-redis"}
    inv = load_inventory(ROOT / "inventories" / "online-boutique.yaml")
    assert inv.get("cartservice") is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "yolo"}, "$.mode"),
        ({"id": "Bad Id"}, "id 'Bad Id' must match"),
        ({"steps": [{"id": "a", "action": "shell"}]}, "$.steps[0].action"),
        (
            {"steps": [{"id": "a", "action": "process.restart", "params": {"x": 1}}]},
            "steps[0].params: unknown parameter 'x'",
        ),
        (
            {"steps": [{"id": "a", "action": "kubernetes.scale", "params": {"replicas": 0}}]},
            "replicas must be at least 1",
        ),
        (
            {"steps": [{"id": "a", "action": "kubernetes.scale", "params": {"replicas": "9"}}]},
            "replicas must be a number",
        ),
        (
            {"steps": [{"id": "a", "action": "command", "params": {"argv": ["rm"]}}]},
            "argv[0] must be the program's absolute path",
        ),
        (
            {
                "steps": [
                    {
                        "id": "a",
                        "action": "command",
                        "params": {"argv": ["/bin/echo"], "args": ["labels.pod"]},
                    }
                ]
            },
            "args[0] must be one of",
        ),
        ({"diagnostics": [{"id": "a", "action": "process.restart"}]}, "must be read-only"),
        ({"mode": "approve"}, "needs 'approvers'"),
        ({"guards": {"max_share": 1.5}}, "max_share must be within [0, 1]"),
        ({"surprise": 1}, "unknown field `surprise`"),
        (
            {
                "steps": [
                    {"id": "a", "action": "http.webhook", "params": {"url": "file:///etc/passwd"}}
                ]
            },
            "url must match",
        ),
    ],
)
def test_bad_runbooks_fail_with_one_line_naming_the_field(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(RunbookError) as err:
        runbook_from_dict({**BOOK, **change}, "runbooks/x.yaml")
    text = str(err.value)
    assert text.startswith("runbooks/x.yaml: ")
    assert message in text
    assert "\n" not in text


def test_duplicate_ids_and_bad_yaml_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("id: same\ntitle: A\n")
    (tmp_path / "b.yaml").write_text("id: same\ntitle: B\n")
    with pytest.raises(RunbookError, match=r"b\.yaml: id 'same' is already used"):
        load_runbooks(tmp_path)
    (tmp_path / "b.yaml").write_text("id: [unclosed\n")
    with pytest.raises(RunbookError, match=r"b\.yaml: not valid YAML"):
        load_runbooks(tmp_path)
    with pytest.raises(RunbookError, match="does not exist"):
        load_runbooks(tmp_path / "nope")


def test_params_are_typed_and_defaulted() -> None:
    assert validate_params(ActionKind.kubernetes_scale, {"replicas": 3}) == {
        "replicas": 3,
        "timeout_s": 30.0,
    }
    with pytest.raises(ParamError, match="at most 1000"):
        validate_params(ActionKind.kubernetes_scale, {"replicas": 10_000})
    with pytest.raises(ParamError, match="token_env must match"):
        validate_params(ActionKind.http_webhook, {"url": "http://x", "token_env": "a b"})
    with pytest.raises(ParamError, match="url must match"):
        validate_params(ActionKind.http_webhook, {"url": "https://user:pw@rundeck/api"})
    with pytest.raises(ParamError, match="not both"):
        validate_params(
            ActionKind.http_webhook, {"url": "http://x", "token_env": "T", "token_file": "/t"}
        )


def test_matching_by_service_team_names_labels_and_severity() -> None:
    rb = runbook_from_dict(BOOK)
    facts = facts_of(incident())
    assert matches(rb, facts)
    assert not matches(rb, facts_of(incident(severity=Severity.warning)))
    assert not matches(rb, facts_of(incident(names=("HighLatency",))))
    topo = Topology.from_dict(
        {"services": [{"name": "cartservice", "team": "shop"}], "dependencies": []}
    )
    by_team = runbook_from_dict({**BOOK, "match": {"teams": ["shop"]}})
    assert matches(by_team, facts, topo)
    assert not matches(by_team, facts)  # no topology: no team
    by_label = runbook_from_dict({**BOOK, "match": {"labels": {"env": "prod"}}})
    assert not matches(by_label, facts)
    assert matches(by_label, facts_of(incident(), {"env": ["dev", "prod"]}))
    by_service = runbook_from_dict(
        {**BOOK, "id": "b", "priority": 1, "match": {"services": ["cartservice"]}}
    )
    assert [r.id for r in matching([rb, by_service], facts)] == ["b", "restart"]


def test_facts_score_and_margin() -> None:
    facts = facts_of(incident())
    assert facts.score == pytest.approx(0.9)
    assert facts.margin == pytest.approx(0.5)
    assert facts_of(incident(root=None)).score == 0.0
    assert facts_of(incident(candidates=(("cartservice", 0.7),))).margin == pytest.approx(0.7)


INV = {
    "services": {
        "cartservice": {
            "supervisor": {"url": "http://127.0.0.1:9001/RPC2", "programs": ["cart-1", "cart-2"]}
        },
        "frontend": {"kubernetes": {"namespace": "shop", "deployment": "frontend"}},
    }
}


def test_targets_come_from_the_inventory_never_from_alert_text() -> None:
    inv = inventory_from_dict(INV)
    t = resolve_target(
        ActionKind.process_restart,
        "cartservice",
        inv,
        Selection.alerting,
        {"pod": ["cart-2", "$(rm -rf /)", "../../etc/passwd"], "instance": ["cart-1; reboot"]},
    )
    assert t.selected == ("cart-2",)
    assert t.instances == ("cart-1", "cart-2")
    one = resolve_target(ActionKind.process_restart, "cartservice", inv, Selection.one, {})
    assert one.selected == ("cart-1",)
    with pytest.raises(NoTarget, match="not in the inventory"):
        resolve_target(ActionKind.process_restart, "cartservice; rm -rf /", inv)
    with pytest.raises(NoTarget, match="no supervisor entry"):
        resolve_target(ActionKind.process_restart, "frontend", inv)
    k = resolve_target(
        ActionKind.kubernetes_delete_pod,
        "frontend",
        inv,
        Selection.all,
        pods=["frontend-a", "bad name"],
    )
    assert k.instances == ("frontend-a",)
    assert k.locator == "shop/frontend"


def test_bad_inventory_one_line() -> None:
    bad = {"services": {"x": {"supervisor": {"url": "http://h/RPC2", "programs": ["a;b"]}}}}
    with pytest.raises(InventoryError, match=r"services.x.supervisor.programs\[0\] 'a;b'"):
        inventory_from_dict(bad, "inv.yaml")
    creds = {"services": {"x": {"supervisor": {"url": "http://u:p@h/RPC2", "programs": ["a"]}}}}
    with pytest.raises(InventoryError, match="without credentials"):
        inventory_from_dict(creds, "inv.yaml")
    with pytest.raises(InventoryError, match=r"inv\.yaml: Object contains unknown field"):
        inventory_from_dict({"services": {"x": {"ssh": {}}}}, "inv.yaml")


def test_supervisor_credentials_only_by_reference() -> None:
    def inv(**refs: str) -> Any:
        sup = {"url": "http://127.0.0.1:9001/RPC2", "programs": ["a"], **refs}
        return inventory_from_dict({"services": {"x": {"supervisor": sup}}}, "inv.yaml")

    ok = inv(username_env="SUP_USER", password_file="/run/secrets/sup")
    target = resolve_target(ActionKind.process_restart, "x", ok, Selection.all)
    assert target.secret_refs == {"username_env": "SUP_USER", "password_file": "/run/secrets/sup"}
    for refs, why in [
        ({"username_env": "SUP_USER"}, "give both a username"),
        ({"password_env": "A", "password_file": "/f", "username_env": "U"}, "not both"),
        ({"username_env": "bad name", "password_env": "P"}, "username_env 'bad name' must match"),
    ]:
        with pytest.raises(InventoryError, match=why) as exc:
            inv(**refs)
        assert str(exc.value).startswith("inv.yaml: services.x.supervisor: ")
    with pytest.raises(InventoryError, match="unknown field `password`"):
        inv(username_env="U", password="hunter2")  # a value in the file is refused


def test_modes() -> None:
    assert runbook_from_dict(BOOK).mode is Mode.auto
    assert runbook_from_dict({"id": "x", "title": "x"}).mode is Mode.suggest


def test_incident_events_carry_the_matching_runbook() -> None:
    from pipeline.domain.pipeline import AlertPipeline
    from pipeline.domain.remediation.matching import RunbookIndex
    from pipeline.domain.schemas import Alert, AlertStatus, encode

    topo = Topology.load(ROOT / "topologies" / "online-boutique.yaml")
    index = RunbookIndex(load_runbooks(ROOT / "runbooks"), topo)
    pipe = AlertPipeline(topo, runbooks=index)
    down = Alert(
        id="a-1",
        source="t",
        service="cartservice",
        name="ProcessDown",
        severity=Severity.critical,
        status=AlertStatus.firing,
        timestamp=T0,
    )
    other = Alert(
        id="a-2",
        source="t",
        service="emailservice",
        name="DiskFull",
        severity=Severity.warning,
        status=AlertStatus.firing,
        timestamp=T0 + timedelta(hours=3),
    )
    events = pipe.process([down], {}).events
    ref = events[0].incident.runbook
    assert ref is not None and ref.id == "restart-crashed-process" and ref.mode == "auto"
    assert [(s.id, s.action) for s in ref.steps] == [
        ("status", "process.status"),
        ("restart", "process.restart"),
    ]
    assert ref.links[0].url.startswith("https://")
    assert b'"runbook":{"id":"restart-crashed-process"' in encode(events[0])
    later = pipe.process([other], {}).events
    assert [e.incident.runbook for e in later if e.incident.root_cause == "emailservice"] == [None]


def test_the_runbook_is_remembered_per_incident_until_what_it_matches_on_changes() -> None:
    from pipeline.domain.remediation.matching import RunbookIndex
    from pipeline.domain.schemas import AlertCount, Incident, IncidentStatus

    topo = Topology.load(ROOT / "topologies" / "online-boutique.yaml")
    index = RunbookIndex(load_runbooks(ROOT / "runbooks"), topo)
    inc = Incident(
        id="inc-1",
        status=IncidentStatus.open,
        opened_at=T0,
        updated_at=T0,
        root_cause="cartservice",
        severity=Severity.critical,
        alert_counts=[AlertCount(service="cartservice", name="ProcessDown", count=1, firing=1)],
    )
    first = index(inc)
    assert first is not None and first.id == "restart-crashed-process"
    assert index(inc) is first
    inc.alert_counts = [AlertCount(service="cartservice", name="Other", count=1, firing=1)] * 2
    again = index(inc)  # a changed count list is looked at again: no process down now
    assert again is not None and again.id == "cart-redis"
