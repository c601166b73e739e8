"""The typed action catalogue: which actions exist, their parameters, bounds and inverses.

No free-form shell: every action is one of :class:`ActionKind`, and a runbook step's
parameters are validated against the kind's declared :class:`ParamSpec` list (type, enum,
bounds, pattern) when the runbook is loaded. Values that identify *what* to act on (process
names, deployments, pods) are never parameters: they come from target resolution
(:mod:`pipeline.domain.remediation.targets`), so alert text cannot choose them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ActionKind(StrEnum):
    process_status = "process.status"
    process_restart = "process.restart"
    kubernetes_rollout_restart = "kubernetes.rollout_restart"
    kubernetes_scale = "kubernetes.scale"
    kubernetes_delete_pod = "kubernetes.delete_pod"
    http_webhook = "http.webhook"
    command = "command"


class ParamError(ValueError):
    """A parameter value breaks its declaration; the message names the parameter."""


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: ``type`` is ``int``, ``float``, ``bool``, ``str``, ``list``
    (of strings) or ``map`` (string to string)."""

    name: str
    type: str
    required: bool = False
    default: Any = None
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    #: a ``str`` (or every ``list`` item) must match this whole
    pattern: str | None = None
    #: longest ``list`` accepted
    max_items: int | None = None
    doc: str = ""

    def check(self, value: Any) -> Any:
        """``value`` converted to the declared type, or :class:`ParamError`."""
        kind = self.type
        if kind == "bool":
            if not isinstance(value, bool):
                raise ParamError(f"{self.name} must be true or false, got {value!r}")
            return value
        if kind in ("int", "float"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ParamError(f"{self.name} must be a number, got {value!r}")
            if kind == "int" and int(value) != value:
                raise ParamError(f"{self.name} must be a whole number, got {value!r}")
            number = int(value) if kind == "int" else float(value)
            if self.minimum is not None and number < self.minimum:
                raise ParamError(f"{self.name} must be at least {self.minimum:g}, got {value!r}")
            if self.maximum is not None and number > self.maximum:
                raise ParamError(f"{self.name} must be at most {self.maximum:g}, got {value!r}")
            return number
        if kind == "str":
            return self._check_str(value, self.name)
        if kind == "list":
            if not isinstance(value, list):
                raise ParamError(f"{self.name} must be a list of strings, got {value!r}")
            if self.max_items is not None and len(value) > self.max_items:
                raise ParamError(f"{self.name} must have at most {self.max_items} items")
            return [self._check_str(v, f"{self.name}[{i}]") for i, v in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                raise ParamError(f"{self.name} must be a mapping, got {value!r}")
            return {
                self._check_str(k, f"{self.name} key"): self._check_str(v, f"{self.name}.{k}")
                for k, v in value.items()
            }
        raise AssertionError(f"unknown parameter type {kind}")

    def _check_str(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise ParamError(f"{where} must be a string, got {value!r}")
        if self.enum and value not in self.enum:
            raise ParamError(f"{where} must be one of {', '.join(self.enum)}, got {value!r}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise ParamError(f"{where} must match {self.pattern}, got {value!r}")
        return value


#: http(s) URLs without user info (credentials belong in token_env / token_file)
URL = r"https?://[^\s/@]+(/\S*)?"
#: environment variable names a ``command`` may set
ENV_NAME = r"[A-Z_][A-Z0-9_]{0,63}"
#: what a ``command`` may pass from the resolved target or incident (never alert text)
COMMAND_FIELDS = ("service", "instance", "incident_id", "runbook_id", "step_id")


@dataclass(frozen=True)
class ActionSpec:
    """What the catalogue knows of one action kind."""

    kind: ActionKind
    params: tuple[ParamSpec, ...]
    #: changes nothing (may run as a diagnostic step, needs no guard but the kill switch)
    read_only: bool = False
    #: acts on instances of the target service (the blast-radius limit applies)
    per_instance: bool = False
    #: the kind that undoes it, if any (its parameters come from the execution's result)
    inverse: ActionKind | None = None
    #: what the inventory must say about the target service
    needs: str = ""
    doc: str = ""

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """Declared parameters with defaults filled in, or :class:`ParamError` naming the
        first problem (unknown names included)."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ParamError(
                f"unknown parameter {unknown[0]!r} for {self.kind} "
                f"(known: {', '.join(known) or 'none'})"
            )
        out: dict[str, Any] = {}
        for spec in self.params:
            if spec.name in params and params[spec.name] is not None:
                out[spec.name] = spec.check(params[spec.name])
            elif spec.required:
                raise ParamError(f"{spec.name} is required for {self.kind}")
            elif spec.default is not None:
                out[spec.name] = spec.default
        return out


_TIMEOUT = ParamSpec("timeout_s", "float", default=30.0, minimum=1, maximum=600)

CATALOGUE: dict[ActionKind, ActionSpec] = {
    ActionKind.process_status: ActionSpec(
        ActionKind.process_status,
        (_TIMEOUT,),
        read_only=True,
        needs="supervisor",
        doc="state of the service's supervised processes (supervisord getProcessInfo)",
    ),
    ActionKind.process_restart: ActionSpec(
        ActionKind.process_restart,
        (_TIMEOUT,),
        per_instance=True,
        needs="supervisor",
        doc="restart the selected processes through supervisord's XML-RPC API",
    ),
    ActionKind.kubernetes_rollout_restart: ActionSpec(
        ActionKind.kubernetes_rollout_restart,
        (_TIMEOUT,),
        needs="kubernetes",
        doc="rolling restart of the service's Deployment (as kubectl rollout restart)",
    ),
    ActionKind.kubernetes_scale: ActionSpec(
        ActionKind.kubernetes_scale,
        (
            ParamSpec("replicas", "int", required=True, minimum=1, maximum=1000),
            _TIMEOUT,
        ),
        inverse=ActionKind.kubernetes_scale,
        needs="kubernetes",
        doc="set the Deployment's replicas; rolled back to the replicas it had before",
    ),
    ActionKind.kubernetes_delete_pod: ActionSpec(
        ActionKind.kubernetes_delete_pod,
        (ParamSpec("grace_period_s", "int", default=30, minimum=0, maximum=3600), _TIMEOUT),
        per_instance=True,
        needs="kubernetes",
        doc="delete the selected pods (their controller replaces them)",
    ),
    ActionKind.http_webhook: ActionSpec(
        ActionKind.http_webhook,
        (
            ParamSpec(
                "url",
                "str",
                required=True,
                pattern=URL,
                doc="no credentials in it (they would land in the audit trail): token_*",
            ),
            ParamSpec("method", "str", default="POST", enum=("POST", "PUT")),
            ParamSpec(
                "token_env",
                "str",
                pattern=ENV_NAME,
                doc="bearer token read from this environment variable at call time",
            ),
            ParamSpec("token_file", "str", doc="bearer token read from this file at call time"),
            ParamSpec("payload", "map", doc="fixed fields added to the JSON body"),
            _TIMEOUT,
        ),
        doc="POST a JSON job description (Rundeck, StackStorm, Argo Events webhooks)",
    ),
    ActionKind.command: ActionSpec(
        ActionKind.command,
        (
            ParamSpec(
                "argv",
                "list",
                required=True,
                max_items=64,
                doc="fixed program and arguments; no shell, no templates",
            ),
            ParamSpec(
                "args",
                "list",
                enum=COMMAND_FIELDS,
                max_items=8,
                doc="resolved values appended to argv, each as one argument",
            ),
            ParamSpec(
                "env",
                "map",
                doc="ENV_NAME: field (one of COMMAND_FIELDS) passed as environment",
            ),
            ParamSpec("read_only", "bool", default=False, doc="may run as a diagnostic"),
            _TIMEOUT,
        ),
        doc="run a fixed program with resolved values as separate arguments or environment",
    ),
}


def validate_command(params: dict[str, Any]) -> None:
    """The ``command`` checks beyond single parameters: a non-empty absolute program, env
    names and fields from :data:`COMMAND_FIELDS`."""
    argv = params["argv"]
    if not argv or not argv[0].startswith("/"):
        raise ParamError("argv[0] must be the program's absolute path (no PATH lookup)")
    if any("\x00" in a for a in argv):
        raise ParamError("argv must not contain NUL characters")
    for name, source in params.get("env", {}).items():
        if not re.fullmatch(ENV_NAME, name):
            raise ParamError(f"env name {name!r} must match {ENV_NAME}")
        if source not in COMMAND_FIELDS:
            raise ParamError(
                f"env.{name} must be one of {', '.join(COMMAND_FIELDS)}, got {source!r}"
            )


def validate_params(kind: ActionKind, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked against ``kind``'s declaration (defaults filled in)."""
    out = CATALOGUE[kind].validate(params)
    if kind is ActionKind.command:
        validate_command(out)
    if kind is ActionKind.http_webhook and "token_env" in out and "token_file" in out:
        raise ParamError("set token_env or token_file, not both")
    return out


def is_read_only(kind: ActionKind, params: dict[str, Any]) -> bool:
    """Whether this action changes nothing (``command`` only when its runbook says so)."""
    if kind is ActionKind.command:
        return bool(params.get("read_only"))
    return CATALOGUE[kind].read_only
