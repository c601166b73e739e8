"""``stormwatch dev`` end to end: its own broker, Redis and worker, the sample storm, the
incident pages at the address it prints, and both views (live table, plain lines)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request

from pipeline.app.localstack import free_port
from tests.integration.conftest import ROOT, wait_for


def _dev(view: str, web_port: int, exit_after: float, *extra: str) -> subprocess.Popen[str]:
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
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _get(url: str, accept: str) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read().decode()


def test_dev_prints_the_pages_address_and_serves_the_storms_incidents() -> None:
    port = free_port()
    oncall = ROOT / "tests" / "fixtures" / "oncall" / "oncall.yaml"
    proc = _dev("plain", port, 15, "--oncall", str(oncall))
    pages = f"http://127.0.0.1:{port}/incidents"

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
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert f"pages   {pages} (open and recent incidents)" in out
    events = [line for line in out.splitlines() if re.match(r"(opened|updated|resolved) ", line)]
    assert events, out  # plain: one line per incident event
    assert any("root cause" in line for line in events)
    # with an on-call file, incidents name who should respond
    assert "oncall  5 people, 2 teams" in out
    assert any(re.search(r"responder \w+ \((payments|web)\)", line) for line in events), out


def test_dev_live_view_draws_a_table_of_incidents() -> None:
    proc = _dev("live", free_port(), exit_after=3)
    out, _ = proc.communicate(timeout=150)
    assert proc.returncode == 0, out
    # off a terminal, rich draws the table's last state once, at the end
    assert "open incidents:" in out and "root cause" in out and "alerts sent 338/338" in out
    assert not re.search(r"^opened ", out, flags=re.M)  # no event lines in the live view
