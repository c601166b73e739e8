"""Remediation executors against real things: a real supervisord (XML-RPC), real child
processes for ``command`` (injection attempts), and a real local HTTP server for
``http.webhook``; the engine end to end on supervisord."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline.adapters.remediation.executor import Executors
from pipeline.adapters.remediation.memory_state import MemoryRemediationState
from pipeline.domain.remediation.actions import ActionKind, validate_params
from pipeline.domain.remediation.audit import encode_record
from pipeline.domain.remediation.engine import Engine
from pipeline.domain.remediation.ports import ExecContext
from pipeline.domain.remediation.runbook import runbook_from_dict
from pipeline.domain.remediation.targets import Target, inventory_from_dict
from tests.integration.supervisord import SLEEPER, Supervisord, start_supervisord
from tests.unit.test_remediation_runbook import incident

pytestmark = pytest.mark.integration

CTX = ExecContext(incident_id="inc-1", runbook_id="rb", step_id="s", action_id="act-1")


@pytest.fixture
def supervisord(tmp_path: Path) -> Iterator[Supervisord]:
    sup = start_supervisord(tmp_path, {"cart-1": SLEEPER, "cart-2": SLEEPER})
    yield sup
    sup.stop()


def target(sup: Supervisord, *names: str) -> Target:
    return Target(
        service="cartservice",
        kind="process.restart",
        locator=sup.url,
        instances=("cart-1", "cart-2"),
        selected=names,
    )


def test_restart_through_supervisord(supervisord: Supervisord) -> None:
    ex = Executors()
    before = supervisord.info("cart-1")["pid"]
    other = supervisord.info("cart-2")["pid"]
    dry = ex.execute(ActionKind.process_restart, target(supervisord, "cart-1"), {}, CTX, True)
    assert dry.ok and "cart-1: RUNNING" in dry.detail
    assert supervisord.info("cart-1")["pid"] == before  # a dry run changes nothing
    res = ex.execute(ActionKind.process_restart, target(supervisord, "cart-1"), {}, CTX, False)
    assert res.ok, res.detail
    after = supervisord.info("cart-1")
    assert after["statename"] == "RUNNING" and after["pid"] != before
    assert supervisord.info("cart-2")["pid"] == other  # only the selected instance


def test_a_killed_process_is_started_again(supervisord: Supervisord) -> None:
    supervisord.kill("cart-1")
    assert supervisord.info("cart-1")["statename"] in ("EXITED", "BACKOFF", "FATAL")
    ex = Executors()
    status = ex.execute(ActionKind.process_status, target(supervisord, "cart-1"), {}, CTX, False)
    assert status.ok and "EXITED" in status.detail
    res = ex.execute(ActionKind.process_restart, target(supervisord, "cart-1"), {}, CTX, False)
    assert res.ok and "EXITED -> RUNNING" in res.detail
    assert supervisord.info("cart-1")["statename"] == "RUNNING"


def test_unknown_program_and_unreachable_supervisord_fail_cleanly(
    supervisord: Supervisord,
) -> None:
    ex = Executors()
    res = ex.execute(ActionKind.process_restart, target(supervisord, "nope"), {}, CTX, True)
    assert not res.ok and "BAD_NAME" in res.detail
    gone = Target(
        service="x",
        kind="process.restart",
        locator="http://127.0.0.1:9/RPC2",
        instances=("a",),
        selected=("a",),
    )
    res = ex.execute(ActionKind.process_restart, gone, {"timeout_s": 2}, CTX, False)
    assert not res.ok and "ConnectionRefusedError" in res.detail


def test_engine_restarts_a_killed_service_and_verifies(supervisord: Supervisord) -> None:
    inventory = inventory_from_dict(
        {
            "services": {
                "cartservice": {
                    "supervisor": {"url": supervisord.url, "programs": ["cart-1", "cart-2"]}
                }
            }
        }
    )
    rb = runbook_from_dict(
        {
            "id": "restart-crashed-process",
            "title": "Restart a crashed process",
            "mode": "auto",
            "match": {"alert_names": ["ProcessDown"]},
            "diagnostics": [{"id": "status", "action": "process.status"}],
            "steps": [{"id": "restart", "action": "process.restart", "verify_s": 60}],
            "guards": {"max_share": 0.5},
        }
    )
    state = MemoryRemediationState()
    eng = Engine([rb], inventory, state, Executors())
    supervisord.kill("cart-2")
    labels = {"process": ["cart-2"], "summary": ["$(kill -9 1)"]}
    out = eng.on_incident(incident(), now=0, labels=labels)
    assert [r.kind for r in out] == ["proposed", "diagnostic", "dry_run", "executed"]
    assert "cart-2: EXITED" in out[1].detail
    assert out[-1].instances == ["cart-2"] and "EXITED -> RUNNING" in out[-1].detail
    assert supervisord.info("cart-2")["statename"] == "RUNNING"
    out = eng.on_incident(incident(firing=0), now=20, labels=labels)
    assert [r.kind for r in out] == ["verified"]
    trail = [json.loads(encode_record(r)) for r in state.records]
    assert {t["incident_id"] for t in trail} == {"inc-1"}
    assert all(t["runbook_id"] == "restart-crashed-process" for t in trail)


def test_supervisord_with_authentication_by_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A supervisord whose XML-RPC API asks for a username and password: the inventory names
    an environment variable and a file, the restart goes through, and neither value shows in
    a record; missing, wrong or absent credentials fail cleanly (nothing runs)."""
    user, password = "stormwatch-ops", "pw-Zq8$(not a shell)"
    sup = start_supervisord(tmp_path, {"cart-1": SLEEPER}, auth=(user, password))
    try:
        (tmp_path / "pw").write_text(password + "\n")
        (tmp_path / "wrong").write_text("not-the-password\n")
        monkeypatch.setenv("SUP_USER", user)

        def engine(**refs: str) -> tuple[Engine, MemoryRemediationState]:
            inventory = inventory_from_dict(
                {
                    "services": {
                        "cartservice": {
                            "supervisor": {"url": sup.url, "programs": ["cart-1"], **refs}
                        }
                    }
                }
            )
            rb = runbook_from_dict(
                {
                    "id": "restart-crashed-process",
                    "title": "Restart",
                    "mode": "auto",
                    "diagnostics": [{"id": "status", "action": "process.status"}],
                    "steps": [{"id": "restart", "action": "process.restart", "select": "all"}],
                    "guards": {"max_share": 1.0},
                }
            )
            state = MemoryRemediationState()
            return Engine([rb], inventory, state, Executors()), state

        sup.kill("cart-1")
        refs = {"username_env": "SUP_USER", "password_file": str(tmp_path / "pw")}
        for bad, why in [
            ({}, "401 Unauthorized"),
            ({**refs, "password_file": str(tmp_path / "wrong")}, "401 Unauthorized"),
            ({**refs, "username_env": "SUP_NOBODY"}, "SUP_NOBODY (username_env) is not set"),
        ]:
            eng, state = engine(**bad)
            out = eng.on_incident(incident(), now=0)
            assert [r.kind for r in out] == ["proposed", "diagnostic", "dry_run", "escalated"]
            assert why in out[1].detail and why in out[2].detail and not out[2].ok
            assert sup.info("cart-1")["statename"] == "EXITED"  # nothing ran
        eng, state = engine(**refs)
        out = eng.on_incident(incident(), now=0)
        assert [r.kind for r in out] == ["proposed", "diagnostic", "dry_run", "executed"]
        assert "EXITED -> RUNNING" in out[-1].detail, out[-1].detail
        assert sup.info("cart-1")["statename"] == "RUNNING"
        out = eng.on_incident(incident(firing=0), now=20)
        assert [r.kind for r in out] == ["verified"]
        trail = b"".join(encode_record(r) for r in state.records)
        assert password.encode() not in trail and b"not-the-password" not in trail
        assert user.encode() not in trail
    finally:
        sup.stop()


# -- command ----------------------------------------------------------------------------

HOSTILE = [
    "$(touch {marker})",
    "`touch {marker}`",
    "x; touch {marker}",
    "x && touch {marker}",
    "x | touch {marker}",
    "{{{{ 7*7 }}}}",
    "${{HOME}}",
    "../../../etc/passwd",
    "x\ntouch {marker}",
    "'; touch {marker}; '",
]

DUMP = (
    "import json, os, sys; "
    "json.dump({'argv': sys.argv[2:], 'env': dict(os.environ)}, open(sys.argv[1], 'w'))"
)


@pytest.mark.parametrize("template", HOSTILE)
def test_command_values_are_inert_arguments(tmp_path: Path, template: str) -> None:
    marker = tmp_path / "pwned"
    hostile = template.format(marker=marker)
    out = tmp_path / "seen.json"
    params = validate_params(
        ActionKind.command,
        {
            "argv": [sys.executable, "-c", DUMP, str(out)],
            "args": ["incident_id", "service"],
            "env": {"SW_INCIDENT": "incident_id"},
        },
    )
    ctx = ExecContext(incident_id=hostile, runbook_id="rb", step_id="s", action_id="a")
    tgt = Target(
        service="cartservice", kind="command", instances=("cartservice",), selected=("cartservice",)
    )
    os.environ["STORMWATCH_TEST_SECRET"] = "s3cr3t"
    try:
        res = Executors().execute(ActionKind.command, tgt, params, ctx, False)
    finally:
        del os.environ["STORMWATCH_TEST_SECRET"]
    assert res.ok, res.detail
    seen = json.loads(out.read_text())
    assert seen["argv"] == [hostile, "cartservice"]
    assert seen["env"]["SW_INCIDENT"] == hostile
    assert "STORMWATCH_TEST_SECRET" not in seen["env"]  # the worker's environment stays home
    assert not marker.exists()


def test_command_refuses_option_like_values_and_has_no_dry_run(tmp_path: Path) -> None:
    params = validate_params(ActionKind.command, {"argv": ["/bin/echo"], "args": ["incident_id"]})
    tgt = Target(service="s", kind="command", instances=("s",), selected=("s",))
    ctx = ExecContext(incident_id="--help", runbook_id="rb", step_id="s", action_id="a")
    res = Executors().execute(ActionKind.command, tgt, params, ctx, False)
    assert not res.ok and "could be read as an option" in res.detail
    assert Executors().execute(ActionKind.command, tgt, params, CTX, True).unsupported
    failing = validate_params(ActionKind.command, {"argv": ["/bin/false"]})
    assert not Executors().execute(ActionKind.command, tgt, failing, CTX, False).ok
    missing = validate_params(ActionKind.command, {"argv": ["/nonexistent/tool"]})
    res = Executors().execute(ActionKind.command, tgt, missing, CTX, False)
    assert not res.ok and "could not start" in res.detail


# -- http.webhook -----------------------------------------------------------------------


class Receiver(ThreadingHTTPServer):
    received: list[dict[str, Any]]
    status: int = 200
    answer: bytes = b'{"id": "job-1"}'
    location: str = ""


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append(
            {"headers": dict(self.headers), "body": json.loads(raw), "path": self.path}
        )
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", str(len(self.server.answer)))
        self.end_headers()
        self.wfile.write(self.server.answer)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), ReceiverHandler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def webhook(receiver: Receiver, **params: Any) -> dict[str, Any]:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/api/job/run"
    return validate_params(ActionKind.http_webhook, {"url": url, **params})


TGT = Target(
    service="cartservice",
    kind="http.webhook",
    instances=("cartservice",),
    selected=("cartservice",),
)


def test_webhook_posts_a_built_body_with_a_referenced_token(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNDECK_TOKEN", "tok-123")
    receiver.answer = b'{"echo": "tok-123"}'
    params = webhook(receiver, token_env="RUNDECK_TOKEN", payload={"job": "failover"})
    res = Executors().execute(ActionKind.http_webhook, TGT, params, CTX, False)
    assert res.ok, res.detail
    got = receiver.received[0]
    assert got["headers"]["Authorization"] == "Bearer tok-123"
    assert got["headers"]["Idempotency-Key"] == "act-1"
    assert got["body"] == {
        "incident_id": "inc-1",
        "runbook_id": "rb",
        "step_id": "s",
        "action_id": "act-1",
        "service": "cartservice",
        "instances": ["cartservice"],
        "payload": {"job": "failover"},
    }
    assert "tok-123" not in res.detail  # scrubbed from the receiver's answer
    token_file = tmp_path / "token"
    token_file.write_text("file-tok\n")
    params = webhook(receiver, token_file=str(token_file))
    assert Executors().execute(ActionKind.http_webhook, TGT, params, CTX, False).ok
    assert receiver.received[1]["headers"]["Authorization"] == "Bearer file-tok"


def test_webhook_failures_are_results(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    res = Executors().execute(
        ActionKind.http_webhook, TGT, webhook(receiver, token_env="NOPE_TOKEN"), CTX, False
    )
    assert not res.ok and "NOPE_TOKEN (token_env) is not set" in res.detail
    assert receiver.received == []
    receiver.status = 500
    res = Executors().execute(ActionKind.http_webhook, TGT, webhook(receiver), CTX, False)
    assert not res.ok and "HTTP 500" in res.detail
    receiver.status, receiver.location = 307, "http://127.0.0.1:9/steal"
    res = Executors().execute(ActionKind.http_webhook, TGT, webhook(receiver), CTX, False)
    assert not res.ok and "HTTP 307" in res.detail  # a redirect is not followed
    assert (
        Executors().execute(ActionKind.http_webhook, TGT, webhook(receiver), CTX, True).unsupported
    )
