"""Checks shared by the domain's settings dataclasses (they are also config groups)."""

from __future__ import annotations

import dataclasses
from typing import Any


def check_non_negative(settings: Any, *, skip: tuple[str, ...] = ()) -> None:
    """Raise ``ValueError`` naming the first numeric field of ``settings`` that is negative."""
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.name in skip or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if value != value:  # NaN compares false with everything
            raise ValueError(f"{f.name} must be a number (got {value})")
        if value < 0:
            raise ValueError(f"{f.name} must be >= 0 (got {value})")


def check_unit_interval(settings: Any, *names: str) -> None:
    """Raise ``ValueError`` naming the first of ``names`` outside [0, 1]."""
    for name in names:
        value = getattr(settings, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1 (got {value})")
