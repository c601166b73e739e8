"""Runbooks: YAML files in a ``runbooks/`` directory, checked when loaded.

A runbook says which incidents it is for (``match``), read-only ``diagnostics`` that run
by themselves, remediation ``steps`` (typed actions from the catalogue), its ``mode``, who
may approve, and its guard settings. Every problem is one line naming the file, the field
and what is wrong (:class:`RunbookError`). See docs/remediation.md for the format.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import msgspec
import yaml

from pipeline.domain.remediation.actions import (
    ActionKind,
    ParamError,
    is_read_only,
    validate_params,
)
from pipeline.domain.remediation.targets import Selection
from pipeline.domain.schemas import Severity

ID = r"[a-z0-9][a-z0-9_.-]{0,63}"


class RunbookError(ValueError):
    """An invalid runbook; the message is one line: file, field, what is wrong."""


class Mode(StrEnum):
    #: propose only: a person runs the steps
    suggest = "suggest"
    #: run after an allowed approver approves on ``feedback``
    approve = "approve"
    #: run when every guard passes
    auto = "auto"


class Match(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which incidents a runbook is for: every given criterion must hold (empty: any).

    ``services``: the root cause is one of these; ``teams``: the root cause's owner team
    (topology) is one of these; ``alert_names``: some member alert's name matches one of
    these shell-style patterns; ``labels``: the incident carries each label pair (its
    ``common_labels``: every alert of the root cause carried it; or, when the caller has
    the members' labels, some member alert carried it);
    ``severity``: the incident's severity is one of these."""

    services: list[str] = []
    teams: list[str] = []
    alert_names: list[str] = []
    labels: dict[str, str] = {}
    severity: list[Severity] = []


class Link(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: str
    url: str


class Step(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One action. ``select`` chooses instances for per-instance actions; ``verify_s``:
    the incident's alerts must resolve within this long after the action."""

    id: str
    action: ActionKind
    params: dict[str, Any] = {}
    title: str = ""
    select: Selection = Selection.alerting
    verify_s: float = 300.0


class Guards(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Per-runbook guard settings (the global ones are in RemediationSettings)."""

    #: the root cause's ranking score at least
    min_score: float = 0.5
    #: lead of the root cause over the second candidate at least
    min_margin: float = 0.0
    #: learned success rate of this runbook for this kind of root cause at least
    min_success_rate: float = 0.0
    #: no second run on the same target within this long
    cooldown_s: float = 900.0
    #: share of the service's instances acted on at once, at most
    max_share: float = 0.5
    #: failed verifications before a person is paged instead
    max_tries: int = 2

    def __post_init__(self) -> None:
        for name in ("min_score", "min_margin", "min_success_rate", "max_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"guards.{name} must be within [0, 1], got {value}")
        if self.max_share == 0.0:
            raise ValueError("guards.max_share must be above 0")
        if self.cooldown_s < 0:
            raise ValueError("guards.cooldown_s must not be negative")
        if self.max_tries < 1:
            raise ValueError("guards.max_tries must be at least 1")


class Runbook(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: str
    title: str
    mode: Mode = Mode.suggest
    match: Match = msgspec.field(default_factory=Match)
    description: str = ""
    links: list[Link] = []
    diagnostics: list[Step] = []
    steps: list[Step] = []
    #: users who may approve or deny (mode ``approve``); empty: nobody can, so nothing runs
    approvers: list[str] = []
    guards: Guards = msgspec.field(default_factory=Guards)
    #: ordering among matching runbooks (lower first)
    priority: int = 100

    def step(self, step_id: str) -> Step | None:
        return next((s for s in [*self.diagnostics, *self.steps] if s.id == step_id), None)


def _check(rb: Runbook) -> Runbook:
    """Checks beyond the types; ValueError naming the field."""
    if not re.fullmatch(ID, rb.id):
        raise ValueError(f"id {rb.id!r} must match {ID}")
    seen: set[str] = set()
    for group, steps in (("diagnostics", rb.diagnostics), ("steps", rb.steps)):
        for i, step in enumerate(steps):
            where = f"{group}[{i}]"
            if not re.fullmatch(ID, step.id):
                raise ValueError(f"{where}.id {step.id!r} must match {ID}")
            if step.id in seen:
                raise ValueError(f"{where}.id {step.id!r} is used twice")
            seen.add(step.id)
            if step.verify_s <= 0:
                raise ValueError(f"{where}.verify_s must be above 0")
            try:
                step.params = validate_params(step.action, step.params)
            except ParamError as exc:
                raise ValueError(f"{where}.params: {exc}") from None
            if group == "diagnostics" and not is_read_only(step.action, step.params):
                raise ValueError(
                    f"{where}: {step.action} changes things; diagnostics must be read-only "
                    "(process.status, or command with read_only: true)"
                )
    if rb.mode is Mode.approve and not rb.approvers:
        raise ValueError("mode 'approve' needs 'approvers' (who may approve)")
    for i, link in enumerate(rb.links):
        if not re.fullmatch(r"https?://\S+", link.url):
            raise ValueError(f"links[{i}].url must be an http(s) URL")
    return rb


def runbook_from_dict(data: Any, source: str = "<runbook>") -> Runbook:
    """A checked runbook, or :class:`RunbookError` with one line naming the problem."""
    try:
        return _check(msgspec.convert(data, Runbook))
    except (msgspec.ValidationError, ValueError) as exc:
        msg = str(exc).splitlines()[0]
        raise RunbookError(f"{source}: {msg}") from None


def load_runbooks(directory: str | Path) -> list[Runbook]:
    """Every ``*.yaml``/``*.yml`` file of ``directory`` (one runbook each), by priority then
    id; ids must be unique. Raises :class:`RunbookError` on the first problem."""
    d = Path(directory)
    if not d.is_dir():
        raise RunbookError(f"runbook directory {str(d)!r} does not exist")
    books: list[Runbook] = []
    owner: dict[str, Path] = {}
    for path in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise RunbookError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
        rb = runbook_from_dict(data, str(path))
        if rb.id in owner:
            raise RunbookError(f"{path}: id {rb.id!r} is already used by {owner[rb.id]}")
        owner[rb.id] = path
        books.append(rb)
    return sorted(books, key=lambda r: (r.priority, r.id))
