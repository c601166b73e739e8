"""Render an :class:`InsightsReport` as ``report.html`` (self-contained: inline CSS and SVG,
no script, no network) and ``report.md``, with Jinja2."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import networkx as nx

from pipeline.domain.insights import InsightsReport
from pipeline.domain.insights.timing import Timing
from pipeline.reports import plots

TEMPLATES = Path(__file__).parent / "templates"
#: rows per table
TOP = 15


def duration(seconds: float | None) -> str:
    """``95`` -> ``1m35s``, ``7200`` -> ``2h00m``; ``-`` for none."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def change(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.0f}%"


def when(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def number(x: float, digits: int = 2) -> str:
    if x == float("inf"):
        return "inf"
    return f"{x:.{digits}g}" if abs(x) < 0.01 and x else f"{x:.{digits}f}"


@dataclass(frozen=True)
class ReportView:
    title: str
    report: InsightsReport
    generated_at: str
    topology_name: str | None
    noisy: list
    ranked: list
    timings: dict[str, list[Timing]]
    plot_rules: str
    plot_recurring: str
    plot_trend_cause: str
    plot_trend_team: str
    plot_topology: str | None


def view(
    report: InsightsReport,
    graph: nx.DiGraph | None = None,
    topology_name: str | None = None,
    title: str = "stormwatch insights",
) -> ReportView:
    by_dim: dict[str, list[Timing]] = {}
    for t in report.timings:
        by_dim.setdefault(t.dimension, []).append(t)
    return ReportView(
        title=title,
        report=report,
        generated_at=when(datetime.now(UTC).timestamp()),
        topology_name=topology_name,
        noisy=[q for q in report.rules if q.noisy][:TOP],
        ranked=report.rules[:TOP],
        timings={dim: rows[:TOP] for dim, rows in by_dim.items()},
        plot_rules=plots.rule_noise_bars(report.rules),
        plot_recurring=plots.recurrence_strip(report.recurring),
        plot_trend_cause=plots.trend_lines(by_dim.get("root_cause", []), "MTTR by root cause"),
        plot_trend_team=plots.trend_lines(by_dim.get("team", []), "MTTR by team"),
        plot_topology=(
            plots.topology_findings(graph, report.suggested_edges, report.stale_edges)
            if graph is not None
            else None
        ),
    )


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(duration=duration, percent=percent, change=change, when=when, number=number)
    return env


def html(v: ReportView) -> str:
    return _environment(True).get_template("report.html.j2").render(v=v, r=v.report)


def markdown(v: ReportView) -> str:
    return _environment(False).get_template("report.md.j2").render(v=v, r=v.report)


def write(v: ReportView, directory: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into ``directory`` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    h, m = directory / "report.html", directory / "report.md"
    h.write_text(html(v), encoding="utf-8")
    m.write_text(markdown(v), encoding="utf-8")
    return h, m
