"""Offline insights: incidents (``replay`` output or ``incidents`` events) and feedback from
JSON-lines files, through the same :class:`Insights` the worker's report uses."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import msgspec

from pipeline.domain.insights import Insights, InsightsReport, InsightsSettings
from pipeline.domain.schemas import EventType, Feedback, Incident, IncidentEvent
from pipeline.domain.topology import Topology
from pipeline.offline.jsonl import json_lines


class ReportInputError(ValueError):
    """An input file cannot be read; the message names the file and line."""


def read_incidents(path: Path) -> Iterator[Incident]:
    """Closed incidents from ``replay`` output lines (incidents) or ``incidents`` topic events
    (only ``resolved`` ones carry a closed incident; the others are skipped)."""
    for lineno, obj in json_lines(path, ReportInputError):
        try:
            if isinstance(obj, dict) and "incident" in obj and "type" in obj:
                event = msgspec.convert(obj, IncidentEvent)
                if event.type is EventType.resolved:
                    yield event.incident
                continue
            yield msgspec.convert(obj, Incident)
        except (msgspec.ValidationError, ValueError) as exc:
            raise ReportInputError(f"{path}:{lineno}: not an incident ({exc})") from None


def read_feedback(path: Path) -> Iterator[Feedback]:
    """Feedback messages (the ``feedback`` topic's format), one per line."""
    for lineno, obj in json_lines(path, ReportInputError):
        try:
            yield msgspec.convert(obj, Feedback)
        except (msgspec.ValidationError, ValueError) as exc:
            raise ReportInputError(f"{path}:{lineno}: not a feedback message ({exc})") from None


def build_report(
    incidents: Path,
    feedback: Path | None = None,
    topology: Topology | None = None,
    settings: InsightsSettings | None = None,
) -> InsightsReport:
    """Feed both files through an :class:`Insights` and report (topology findings need the
    topology the correlator used). Feedback is read first and waits for its incident, so the
    bound on waiting feedback is raised to the file's size."""
    settings = settings or InsightsSettings()
    if feedback is not None:
        if not feedback.is_file():
            raise ReportInputError(f"input file {str(feedback)!r} does not exist")
        with feedback.open("rb") as fh:
            lines = sum(1 for _ in fh)
        wait = max(settings.max_pending_feedback, lines)
        settings = dataclasses.replace(settings, max_pending_feedback=wait)
    insights = Insights(settings, team_of=topology.team if topology else None)
    if feedback is not None:
        for fb in read_feedback(feedback):
            insights.observe_feedback(fb)
    for inc in read_incidents(incidents):
        insights.observe_incident(inc)
    return insights.report(topology.graph if topology else None)


def parse_since(text: str) -> float:
    """``90m``, ``12h``, ``7d``, ``2w`` -> seconds."""
    units = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) < 1:
        raise ValueError(
            f"--since must be a positive whole number and a unit m, h, d or w (like 7d), "
            f"not {text!r}"
        )
    return int(number) * units[unit]
