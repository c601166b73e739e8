"""The runbooks the worker attaches to incident events (docs/remediation.md)."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.domain.remediation.matching import RunbookIndex
from pipeline.domain.remediation.runbook import load_runbooks
from pipeline.domain.topology import Topology


def runbook_index(settings: Settings, topology: Topology) -> RunbookIndex | None:
    """The configured runbooks as an annotate hook, or None when the directory does not
    exist (no runbooks); invalid runbooks raise RunbookError (one line)."""
    if not settings.remediation.runbooks.is_dir():
        return None
    return RunbookIndex(load_runbooks(settings.remediation.runbooks), topology)
