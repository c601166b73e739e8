"""``stormwatch dev`` end to end: its own broker, Redis and worker, the sample storm, the
incident pages at the address it prints, both views (live table, plain lines), and the
remediation demo (supervised demo-worker killed, its incident carries
restart-crashed-process, the remediation process restarts it and the restart is verified)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.app.localstack import free_port
from tests.integration.conftest import ROOT, wait_for

pytestmark = pytest.mark.integration


def _dev(
    view: str, web_port: int, exit_after: float, *extra: str, stdout: int | None = None
) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "pipeline",
        "dev",
        "--speed",
        "2400",  # the sample storm's four hours in six seconds
        "--exit-after",
        str(exit_after),
        "--broker-port",
        str(free_port()),
        "--redis-port",
        str(free_port()),
        "--web-port",
        str(web_port),
        "--view",
        view,
        *extra,
    ]
    out = subprocess.PIPE if stdout is None else stdout
    return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)


def _get(url: str, accept: str) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read().decode()


VERIFIED = "remediation verified · restart-crashed-process"


@dataclass
class DevRun:
    """A running ``stormwatch dev``: its pages' address, and its output once it ended."""

    proc: subprocess.Popen[str]
    pages: str
    log: Path

    def output(self) -> str:
        """Everything it printed: once the demo's restart was verified it is stopped, as
        Ctrl-C stops it (else it ends by itself, ``exit_after`` after the storm)."""
        wait_for(
            lambda: self.proc.poll() is not None or VERIFIED in self.log.read_text(),
            240,
            "the demo's restart verified",
        )
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: it stops what it started and exits 0
        self.proc.wait(timeout=60)
        return self.log.read_text()


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    """One plain run with an on-call file, shared by the tests below (one stack start), until
    the demo's restart is verified (at most 120 s after the storm). The first test reads its
    pages while it runs."""
    port = free_port()
    log = tmp_path_factory.mktemp("dev") / "dev.out"
    oncall = ROOT / "tests" / "fixtures" / "oncall" / "oncall.yaml"
    with log.open("w") as out:  # a file, not a pipe: nothing blocks while no test reads
        proc = _dev("plain", port, 120, "--oncall", str(oncall), stdout=out.fileno())
    yield DevRun(proc, f"http://127.0.0.1:{port}/incidents", log)
    if proc.poll() is None:
        proc.terminate()  # it stops what it started on SIGTERM
        proc.wait(timeout=60)


def test_dev_prints_the_pages_address_and_serves_the_storms_incidents(plain_run: DevRun) -> None:
    pages = plain_run.pages

    def listed() -> list[str]:
        try:
            _code, body = _get(f"{pages}?format=json", "application/json")
        except OSError:
            return []
        doc = json.loads(body)
        return [r["id"] for r in doc["open"] + doc["recently_closed"] if r["root_cause"]]

    ids = wait_for(listed, 90, "an incident of the sample storm on the pages")
    code, html = _get(f"{pages}/{ids[0]}", "text/html")
    assert code == 200 and 'class="topology"' in html and 'class="node root"' in html
    # the worker's writes need the token dev made and printed (ownership left as it is)
    token = re.search(
        r'Authorization: Bearer (\w+)" \(made for this run\)', plain_run.log.read_text()
    )
    assert token, plain_run.log.read_text()
    owner = pages.removesuffix("/incidents") + "/oncall/owners/frontend"

    def put(headers: dict[str, str]) -> urllib.request.Request:
        return urllib.request.Request(owner, b'{"team": "web"}', headers, method="PUT")

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(put({}), timeout=10)
    assert refused.value.code == 401
    with urllib.request.urlopen(put({"Authorization": f"Bearer {token[1]}"}), timeout=10) as r:
        assert json.loads(r.read()) == {"service": "frontend", "team": "web"}
    out = plain_run.output()
    assert plain_run.proc.returncode == 0, out
    assert f"pages   {pages} (open and recent incidents)" in out
    events = [line for line in out.splitlines() if re.match(r"(opened|updated|resolved) ", line)]
    assert events, out  # plain: one line per incident event
    assert any("root cause" in line for line in events)
    # with an on-call file, incidents name who should respond
    assert "oncall  5 people, 2 teams" in out
    assert any(re.search(r"responder \w+ \((payments|web)\)", line) for line in events), out


def test_dev_restarts_its_demo_process(plain_run: DevRun) -> None:
    out = plain_run.output()
    assert plain_run.proc.returncode == 0, out[-3000:]
    assert "killed demo-worker (supervisord: EXITED)" in out
    assert re.search(r"runbook restart-crashed-process \(auto\) for inc-", out), out[-3000:]
    executed = re.search(r"remediation executed · restart-crashed-process · .*RUNNING", out)
    assert executed, out[-3000:]
    assert VERIFIED in out


def test_dev_live_view_draws_a_table_of_incidents() -> None:
    proc = _dev("live", free_port(), exit_after=3)
    out, _ = proc.communicate(timeout=150)
    assert proc.returncode == 0, out
    # off a terminal, rich draws the table's last state once, at the end
    assert "open incidents:" in out and "root cause" in out and "alerts sent 338/338" in out
    assert not re.search(r"^opened ", out, flags=re.M)  # no event lines in the live view
