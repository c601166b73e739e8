"""Remediation state on a real redis-server: locks, marks, breaker history, approvals,
pending actions across a restart, the audit trail."""

from __future__ import annotations

import uuid

import pytest
import redis

from pipeline.adapters.remediation.redis_state import RedisRemediationState
from pipeline.app.localstack import Service
from pipeline.domain.remediation.audit import AuditKind, AuditRecord, decode_record
from pipeline.domain.remediation.engine import Engine
from pipeline.domain.remediation.guards import Approval, Decision
from tests.unit.test_remediation_engine import INV, FakeExecutor, book
from tests.unit.test_remediation_runbook import incident

pytestmark = pytest.mark.integration


@pytest.fixture
def state(redis_service: Service) -> RedisRemediationState:
    client = redis.Redis.from_url(redis_service.url)
    return RedisRemediationState(client, prefix=f"t{uuid.uuid4().hex[:8]}:")


def test_locks_are_exclusive_and_released_only_by_their_holder(
    state: RedisRemediationState,
) -> None:
    assert state.acquire("svc|k", "act-1", 60)
    assert state.acquire("svc|k", "act-1", 60)  # the holder again (a retried step)
    assert not state.acquire("svc|k", "act-2", 60)
    state.release("svc|k", "act-2")
    assert state.lock_holder("svc|k") == "act-1"
    state.release("svc|k", "act-1")
    assert state.lock_holder("svc|k") is None
    assert state.acquire("svc|k", "act-2", 0.05)


def test_one_process_leads(state: RedisRemediationState) -> None:
    assert state.lead("a", 0.3)
    assert state.lead("a", 0.3)  # renewal
    assert not state.lead("b", 0.3)
    import time

    time.sleep(0.4)  # "a" died: its key expires
    assert state.lead("b", 5)
    assert not state.lead("a", 5)


def test_marks_runs_tries_approvals_and_kill_switch(state: RedisRemediationState) -> None:
    assert state.mark("proposed|i|rb") and not state.mark("proposed|i|rb")
    assert state.seen("proposed|i|rb") and not state.seen("other")
    state.note_run("rb", "svc|k", "svc", "i1", 100.0)
    state.note_run("rb", "svc|k", "svc", "i2", 200.0)
    assert state.last_run("rb", "svc|k") == (200.0, "i2")
    assert state.recent_runs(100.0) == [(200.0, "svc")]
    assert state.tries("i", "rb") == 0 and state.add_try("i", "rb") == 1
    state.add_approval("i", "rb", Approval(user="alice", decision=Decision.approve, at=1.0))
    assert state.approvals("i", "rb") == [Approval(user="alice", decision=Decision.approve, at=1.0)]
    assert not state.kill_switch()
    state.set_kill_switch(True)
    assert state.kill_switch()
    state.set_kill_switch(False)
    assert not state.kill_switch()


def test_a_restarted_engine_finds_the_action_in_redis(
    state: RedisRemediationState, redis_service: Service
) -> None:
    eng = Engine([book()], INV, state, FakeExecutor(crash=True))
    with pytest.raises(KeyboardInterrupt):
        eng.on_incident(incident(), now=0)
    # a new process: new client, same Redis and prefix
    again = RedisRemediationState(redis.Redis.from_url(redis_service.url), prefix=state.p[:-4])
    ex = FakeExecutor()
    eng2 = Engine([book()], INV, again, ex)
    assert [r.kind for r in eng2.tick(now=1)] == [AuditKind.executed]
    assert eng2.on_incident(incident(), now=2) == []
    assert [r.kind for r in eng2.on_incident(incident(firing=0), now=3)] == [AuditKind.verified]
    assert ex.real == []
    trail = [decode_record(b) for b in again.audit("inc-1")]
    assert [r.kind for r in trail] == ["proposed", "diagnostic", "dry_run", "executed", "verified"]
    assert again.pending() == [] and again.lock_holder(trail[-1].service) is None
    assert isinstance(trail[0], AuditRecord)


def test_kill_switch_command_flips_the_switch_every_process_reads(
    state: RedisRemediationState, redis_service: Service
) -> None:
    import os
    import subprocess
    import sys

    from tests.integration.conftest import ROOT

    env = {
        **os.environ,
        "STORMWATCH_REDIS__URL": redis_service.url,
        "STORMWATCH_REDIS__KEY_PREFIX": state.p[: -len("rem:")],
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "pipeline", "remediation", *args]
        return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)

    assert run("kill-switch", "on").stdout == "on\n"
    assert state.kill_switch()
    assert run("kill-switch", "status").stdout == "on\n"
    assert run("kill-switch", "off").stdout == "off\n"
    assert not state.kill_switch()
    bad = run("kill-switch", "maybe")
    assert bad.returncode == 2
    missing = run("trail", "no-such-incident")
    assert missing.returncode == 2 and "no remediation records" in missing.stderr
