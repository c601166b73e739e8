"""``stormwatch dev`` shows a runbook attached and the auto-restart of the process it
supervises: demo-worker is killed, its incident carries restart-crashed-process, the
remediation process restarts it and the restart is verified."""

from __future__ import annotations

import re

import pytest

from pipeline.app.localstack import free_port
from tests.integration.test_dev import _dev

pytestmark = pytest.mark.integration


def test_dev_restarts_its_demo_process() -> None:
    proc = _dev("plain", free_port(), exit_after=40)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    assert "killed demo-worker (supervisord: EXITED)" in out
    assert re.search(r"runbook restart-crashed-process \(auto\) for inc-", out), out[-3000:]
    executed = re.search(r"remediation executed · restart-crashed-process · .*RUNNING", out)
    assert executed, out[-3000:]
    assert "remediation verified · restart-crashed-process" in out
