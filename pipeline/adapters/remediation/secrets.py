"""Secrets by reference: read from an environment variable or a file at call time, never
stored in runbooks, records, events or logs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class SecretError(ValueError):
    """A referenced secret is missing; the message names the reference, never a value."""


def read_secret(
    params: dict[str, Any], environ: dict[str, str] | None = None, name: str = "token"
) -> str | None:
    """The secret ``params`` reference as ``<name>_env`` or ``<name>_file``, or None."""
    env = os.environ if environ is None else environ
    if params.get(f"{name}_env"):
        var = params[f"{name}_env"]
        value = env.get(var)
        if not value:
            raise SecretError(f"environment variable {var} ({name}_env) is not set")
        return value
    if params.get(f"{name}_file"):
        path = Path(params[f"{name}_file"])
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise SecretError(f"{name}_file {path} cannot be read ({exc.strerror})") from None
    return None
