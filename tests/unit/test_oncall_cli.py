"""``stormwatch oncall`` on files (no Redis): answers, imports, feeds and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import icalendar
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.domain.oncall import parse_directory

FIXTURES = Path(__file__).parents[1] / "fixtures" / "oncall"
ONCALL = str(FIXTURES / "oncall.yaml")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["oncall", *args])
    return result.exit_code, result.stdout, result.stderr


def test_who_says_who_why_and_until_when() -> None:
    code, out, _ = run(
        "who", "--team", "payments", "--at", "2026-03-09T12:00-04:00", "--file", ONCALL
    )
    assert code == 0
    assert out.splitlines() == [
        "payments-primary: Bob Brown (email bob@example.com)",
        "  why: bob: layer 'business-hours' (1d rotation, turn 2 of 2, restricted to "
        "mon,tue,wed,thu,fri 09:00-17:00), until 2026-03-09 17:00 EDT",
    ]
    code, out, _ = run(
        "who", "--service", "frontend", "--json", "--at", "2026-03-09T16:00Z", "--file", ONCALL
    )
    doc = json.loads(out)
    assert doc["team"] == "web" and [a["person"] for a in doc["oncall"]] == ["dave", "erin"]


def test_import_prints_yaml_the_file_format_reads(tmp_path: Path) -> None:
    code, out, err = run(
        "import",
        str(FIXTURES / "google-sre-berlin.ics"),
        "--schedule",
        "sre",
        "--time-zone",
        "Europe/Berlin",
        "--file",
        ONCALL,
    )
    assert code == 0, err
    merged = yaml.safe_load(Path(ONCALL).read_text())
    merged["schedules"].update(yaml.safe_load(out)["schedules"])
    assert "sre" in parse_directory(merged).schedules
    code, out, err = run("import", str(FIXTURES / "pagerduty-schedule.json"), "--file", ONCALL)
    assert code == 0, err
    doc = yaml.safe_load(out)
    merged["people"].update(doc["people"])
    merged["schedules"].update(doc["schedules"])
    assert "daily-engineering-rotation" in parse_directory(merged).schedules


def test_export_writes_a_calendar(tmp_path: Path) -> None:
    feed = tmp_path / "erin.ics"
    code, _, err = run(
        "export",
        "--person",
        "erin",
        "--from",
        "2026-03-02T00:00Z",
        "--days",
        "7",
        "--output",
        str(feed),
        "--file",
        ONCALL,
    )
    assert code == 0, err
    cal = icalendar.Calendar.from_ical(feed.read_bytes())
    assert all("Erin" in str(e["SUMMARY"]) for e in cal.walk("VEVENT"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("who", "--file", ONCALL), "give one of --team T or --service S"),
        (("who", "--team", "payments", "--at", "teatime", "--file", ONCALL), "not an ISO 8601"),
        (("who", "--service", "nothing", "--file", ONCALL), "has no owner"),
        (("who", "--team", "x", "--file", "/nonexistent.yaml"), "does not exist"),
        (("export", "--schedule", "nope", "--file", ONCALL), "no schedule 'nope'"),
        (("export", "--person", "erin", "--days", "0", "--file", ONCALL), "--days 0"),
        (
            ("import", str(FIXTURES / "oncall.yaml"), "--format", "csv", "--file", ONCALL),
            "--format",
        ),
        (
            ("import", str(FIXTURES / "oncall.yaml"), "--format", "pagerduty", "--file", ONCALL),
            "not JSON (Expecting value at line 1)",
        ),
        (
            (
                "import",
                str(FIXTURES / "google-sre-berlin.ics"),
                "--time-zone",
                "Mars/Base",
                "--file",
                ONCALL,
            ),
            "Mars/Base",
        ),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args: tuple[str, ...], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_escalation_dry_run_lists_who_each_step_pages() -> None:
    code, out, err = run(
        "escalation", "--team", "payments", "--at", "2026-03-09T16:00Z", "--file", ONCALL
    )
    assert code == 0, err
    assert out.splitlines() == [
        "+   0 min  step 1 (pass 1): Bob Brown",
        "+   5 min  step 2 (pass 1): Alice Adams",
        "+  15 min  step 3 (pass 1): Dave Dorsey, Erin Eder",
        "+  30 min  step 1 (pass 2): Bob Brown",
        "+  35 min  step 2 (pass 2): Carol Chen",
        "+  45 min  step 3 (pass 2): Dave Dorsey, Erin Eder",
        "then: exhausted",
    ]
    code, _, err = run("escalation", "--team", "web", "--file", ONCALL)
    assert code == 2 and "team 'web' has no escalation_policy" in err
