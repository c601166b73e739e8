"""Secrets by reference: read from an environment variable or a file at call time, never
stored in runbooks, records, events or logs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class SecretError(ValueError):
    """A referenced secret is missing; the message names the reference, never a value."""


def read_secret(params: dict[str, Any], environ: dict[str, str] | None = None) -> str | None:
    """The token ``params`` reference (``token_env`` or ``token_file``), or None."""
    env = os.environ if environ is None else environ
    if params.get("token_env"):
        name = params["token_env"]
        value = env.get(name)
        if not value:
            raise SecretError(f"environment variable {name} (token_env) is not set")
        return value
    if params.get("token_file"):
        path = Path(params["token_file"])
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise SecretError(f"token_file {path} cannot be read ({exc.strerror})") from None
    return None
