"""The offline report: inputs read (replay output, events, feedback), errors named, both files
written, self-contained HTML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.synthetic import remove_edges, storm
from pipeline.cli import app
from pipeline.domain.topology import Topology
from pipeline.offline.replay import incident_record, replay_alerts

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """A DeathStarBench storm replayed with one edge missing from the topology."""
    d = tmp_path_factory.mktemp("report")
    true = Topology.load(ROOT / "topologies" / "deathstarbench-media.yaml")
    given, removed = remove_edges(true, 1, seed=1)
    (d / "given.yaml").write_text(
        "name: given\ndependencies:\n"
        + "".join(f"  - {{from: {a}, to: {b}}}\n" for a, b in sorted(given.graph.edges))
    )
    incidents = replay_alerts(given, storm(true, 8000, seed=1, fault_every_s=600))
    with (d / "incidents.jsonl").open("w") as fh:
        for inc in incidents:
            fh.write(json.dumps(incident_record(inc)) + "\n")
    fb = d / "feedback.jsonl"
    with fb.open("w") as fh:
        for inc in incidents[:20]:
            at = inc.opened_at.isoformat()
            fh.write(json.dumps({"incident_id": inc.id, "action": "ack", "timestamp": at}) + "\n")
            fh.write(
                json.dumps(
                    {
                        "incident_id": inc.id,
                        "action": "verdict",
                        "verdict": "noise",
                        "timestamp": at,
                    }
                )
                + "\n"
            )
    return d, fb, [f"{a} -> {b}" for a, b in removed]


def test_report_writes_html_and_markdown_with_every_section(
    replayed: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    d, fb, removed = replayed
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "report",
            "--incidents",
            str(d / "incidents.jsonl"),
            "--feedback",
            str(fb),
            "--topology",
            str(d / "given.yaml"),
            "--output",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    for text in (html, md):
        assert "Alert rules to fix or delete" in text
        assert "Recurring incidents" in text
        assert "by root cause" in text and "by severity" in text
        assert "Suggested missing edges" in text
    # the edge the topology lost is suggested (caller -> callee as in the true graph)
    assert removed[0].replace(" -> ", " → ") in md
    assert "40 feedback messages" in md
    # self-contained: inline SVG, no script, nothing fetched
    assert html.count("<svg") >= 4
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html


def test_incident_events_are_read_too_and_only_resolved_ones_count(tmp_path: Path) -> None:
    inc = {
        "id": "inc-1",
        "status": "resolved",
        "opened_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:10:00Z",
        "resolved_at": "2024-01-01T00:10:00Z",
        "alert_counts": [{"service": "db", "name": "Down", "count": 1}],
        "root_cause": "db",
    }
    lines = [
        {"type": "opened", "incident": {**inc, "status": "open"}, "at": "2024-01-01T00:00:00Z"},
        {"type": "resolved", "incident": inc, "at": "2024-01-01T00:10:00Z"},
    ]
    f = tmp_path / "events.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = runner.invoke(app, ["report", "--incidents", str(f), "--output", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "o" / "report.md").read_text()
    assert md.startswith("# stormwatch insights\n\n1 incidents")
    assert "No topology given" in md


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("{not json\n", [], "incidents.jsonl:1: not valid JSON"),
        ('{"id": 3}\n', [], "incidents.jsonl:1: not an incident"),
        (None, [], "does not exist"),
        ("", ["--bucket-hours", "0"], "--bucket-hours must be positive"),
        ("", ["--topology", "/nonexistent.yaml"], "nonexistent.yaml"),
    ],
)
def test_bad_input_ends_with_one_line(
    tmp_path: Path, content: str | None, args: list[str], message: str
) -> None:
    f = tmp_path / "incidents.jsonl"
    if content is not None:
        f.write_text(content)
    res = runner.invoke(
        app, ["report", "--incidents", str(f), "--output", str(tmp_path / "o"), *args]
    )
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output


def test_bad_feedback_line_is_named(tmp_path: Path) -> None:
    f = tmp_path / "incidents.jsonl"
    f.write_text("")
    fb = tmp_path / "fb.jsonl"
    fb.write_text(
        '{"incident_id": "x", "action": "verdict", "timestamp": "2024-01-01T00:00:00Z"}\n'
    )
    res = runner.invoke(
        app,
        ["report", "--incidents", str(f), "--feedback", str(fb), "--output", str(tmp_path / "o")],
    )
    assert res.exit_code == 2 and "fb.jsonl:1: not a feedback message" in res.output


def test_remove_edges_keeps_the_graph_connected_and_the_pairs_apart() -> None:
    import networkx as nx

    true = Topology.load(ROOT / "topologies" / "deathstarbench-social-network.yaml")
    given, removed = remove_edges(true, 3, seed=2)
    assert len(removed) == 3 and nx.is_weakly_connected(given.graph)
    for a, b in removed:
        assert not nx.has_path(given.graph, a, b) and not nx.has_path(given.graph, b, a)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give either --incidents FILE"),
        (["--incidents", "x.jsonl", "--since", "7d"], "give either --incidents FILE"),
        (["--since", "7days"], "--since must be a positive whole number and a unit"),
        (["--since", "0d"], "--since must be a positive whole number and a unit"),
        (["--since", "7d", "--feedback", "f.jsonl"], "--feedback goes with --incidents"),
    ],
)
def test_mode_arguments_end_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    res = runner.invoke(app, ["report", "--output", str(tmp_path / "o"), *args])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_since_parses_units() -> None:
    from pipeline.offline.report import parse_since

    assert (
        parse_since("90m") == 5400 and parse_since("7d") == 604800 and parse_since("2w") == 1209600
    )
