"""The inventory (what runs where) and target resolution.

A target is always resolved from the incident's root cause (a service name the correlator
chose) looked up in the inventory file; a service the inventory does not list has no
target, so nothing runs. Alert labels may *select* among the instances the inventory
names (exact match only), never introduce a name of their own.

Inventory file (YAML)::

    services:
      checkoutservice:
        supervisor: {url: "http://127.0.0.1:9001/RPC2", programs: [checkout-1, checkout-2]}
        kubernetes: {namespace: shop, deployment: checkoutservice, selector: "app=checkout"}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import msgspec
import yaml

from pipeline.domain.remediation.actions import CATALOGUE, ENV_NAME, URL, ActionKind

#: what names of processes, namespaces, deployments and pods may look like (Kubernetes
#: DNS-1123 labels and supervisord program names are both within it)
NAME = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}"


class InventoryError(ValueError):
    """The inventory file is invalid; the message is one line naming file and field."""


class SupervisorRef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The service's processes under one supervisord (``url`` of its XML-RPC endpoint).

    When its ``inet_http_server`` has a username and password, they are given by reference:
    an environment variable (``*_env``) or a file (``*_file``) read at call time, never
    written to the inventory, records, events or logs."""

    url: str
    programs: list[str]
    username_env: str = ""
    username_file: str = ""
    password_env: str = ""
    password_file: str = ""

    def secret_refs(self) -> dict[str, str]:
        """The references that are set (names of variables and files, not values)."""
        refs = {
            "username_env": self.username_env,
            "username_file": self.username_file,
            "password_env": self.password_env,
            "password_file": self.password_file,
        }
        return {k: v for k, v in refs.items() if v}


class KubernetesRef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    namespace: str
    deployment: str
    #: label selector of the Deployment's pods (``kubernetes.delete_pod`` lists them)
    selector: str = ""


class ServiceInventory(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    supervisor: SupervisorRef | None = None
    kubernetes: KubernetesRef | None = None


class Inventory(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    services: dict[str, ServiceInventory] = {}

    def get(self, service: str | None) -> ServiceInventory | None:
        return self.services.get(service) if service else None


class Selection(StrEnum):
    """Which of the service's instances a per-instance step acts on."""

    #: instances named (exactly) by a member alert's instance label; none named: none
    alerting = "alerting"
    #: the first alerting instance, else the first listed
    one = "one"
    #: every listed instance (the blast-radius limit still applies)
    all = "all"
    #: the listed instances the platform reports unhealthy (supervisord: not running)
    unhealthy = "unhealthy"


#: member-alert labels that may name an instance (values must equal an inventory name)
INSTANCE_LABELS = ("instance", "pod", "process", "program")


class Target(msgspec.Struct, kw_only=True, frozen=True):
    """What an action acts on. ``instances`` are every instance the inventory knows for the
    service, ``selected`` the ones this action touches."""

    service: str
    kind: str
    instances: tuple[str, ...] = ()
    selected: tuple[str, ...] = ()
    #: supervisord URL, or ``namespace/deployment``
    locator: str = ""
    selector: str = ""
    #: where the executor reads credentials (``SupervisorRef.secret_refs``), never values
    secret_refs: dict[str, str] = {}

    @property
    def key(self) -> str:
        """Lock and cooldown key: the service and what is acted on."""
        return f"{self.service}|{self.kind}|{self.locator}"


def load_inventory(path: str | Path) -> Inventory:
    """Read and check an inventory file; :class:`InventoryError` with one line on error."""
    p = Path(path)
    if not p.is_file():
        raise InventoryError(f"inventory file {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InventoryError(f"{p}: not valid YAML ({exc.__class__.__name__})") from None
    return inventory_from_dict(data, str(p))


def inventory_from_dict(data: Any, source: str = "<inventory>") -> Inventory:
    try:
        inv = msgspec.convert(data, Inventory)
    except msgspec.ValidationError as exc:
        raise InventoryError(f"{source}: {exc}") from None
    for service, entry in inv.services.items():
        if not re.fullmatch(NAME, service):
            raise InventoryError(f"{source}: services: {service!r} is not a valid name ({NAME})")
        names: list[tuple[str, str]] = []
        if entry.supervisor is not None:
            if not re.fullmatch(URL, entry.supervisor.url):
                raise InventoryError(
                    f"{source}: services.{service}.supervisor.url must be an http(s) URL "
                    "without credentials (they would land in the audit trail)"
                )
            names += [
                (f"supervisor.programs[{i}]", n) for i, n in enumerate(entry.supervisor.programs)
            ]
            problem = _auth_problem(entry.supervisor)
            if problem:
                raise InventoryError(f"{source}: services.{service}.supervisor: {problem}")
        if entry.kubernetes is not None:
            k = entry.kubernetes
            names += [
                ("kubernetes.namespace", k.namespace),
                ("kubernetes.deployment", k.deployment),
            ]
        for where, name in names:
            if not re.fullmatch(NAME, name):
                raise InventoryError(
                    f"{source}: services.{service}.{where} {name!r} is not a valid name ({NAME})"
                )
    return inv


def _auth_problem(ref: SupervisorRef) -> str | None:
    """What is wrong with a supervisord entry's credential references, if anything."""
    for what in ("username", "password"):
        env, file = getattr(ref, f"{what}_env"), getattr(ref, f"{what}_file")
        if env and file:
            return f"set {what}_env or {what}_file, not both"
        if env and not re.fullmatch(ENV_NAME, env):
            return f"{what}_env {env!r} must match {ENV_NAME}"
    has_user = bool(ref.username_env or ref.username_file)
    has_password = bool(ref.password_env or ref.password_file)
    if has_user != has_password:
        return (
            "give both a username (username_env or username_file) and a password "
            "(password_env or password_file), or neither"
        )
    return None


class NoTarget(ValueError):
    """No target can be resolved; the message says why (nothing runs)."""


def resolve_target(
    kind: ActionKind,
    service: str | None,
    inventory: Inventory,
    selection: Selection = Selection.alerting,
    labels: Mapping[str, list[str]] | None = None,
    pods: list[str] | None = None,
    unhealthy: list[str] | None = None,
) -> Target:
    """The target of ``kind`` for the root-cause ``service``.

    ``labels`` are the member alerts' label values (only exact inventory names count);
    ``pods`` the pods of a Kubernetes service as its API listed them (delete_pod);
    ``unhealthy`` the instances the platform reports unhealthy (same rule)."""
    entry = inventory.get(service)
    if service is None or entry is None:
        raise NoTarget(f"service {service!r} is not in the inventory")
    need = CATALOGUE[kind].needs
    refs: dict[str, str] = {}
    if need == "supervisor":
        if entry.supervisor is None:
            raise NoTarget(f"service {service!r} has no supervisor entry in the inventory")
        instances = tuple(entry.supervisor.programs)
        locator = entry.supervisor.url
        selector = ""
        refs = entry.supervisor.secret_refs()
    elif need == "kubernetes":
        if entry.kubernetes is None:
            raise NoTarget(f"service {service!r} has no kubernetes entry in the inventory")
        k = entry.kubernetes
        locator = f"{k.namespace}/{k.deployment}"
        selector = k.selector
        instances = tuple(p for p in (pods or []) if re.fullmatch(NAME, p))
    else:  # http.webhook, command: the service itself is the target
        return Target(service=service, kind=str(kind), instances=(service,), selected=(service,))
    if not CATALOGUE[kind].per_instance:
        return Target(
            service=service,
            kind=str(kind),
            instances=instances,
            selected=instances,
            locator=locator,
            selector=selector,
            secret_refs=refs,
        )
    named = {v for key in INSTANCE_LABELS for v in (labels or {}).get(key, [])}
    alerting = tuple(i for i in instances if i in named)
    if selection is Selection.all:
        selected = instances
    elif selection is Selection.unhealthy:
        selected = tuple(i for i in instances if i in set(unhealthy or ()))
    elif selection is Selection.one:
        selected = alerting[:1] or instances[:1]
    else:
        selected = alerting
    return Target(
        service=service,
        kind=str(kind),
        instances=instances,
        selected=selected,
        locator=locator,
        selector=selector,
        secret_refs=refs,
    )
