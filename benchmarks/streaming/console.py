"""The bench's console: tables at 130 columns and time-stamped progress lines."""

from __future__ import annotations

import time

from rich.console import Console

console = Console(width=130)


def log(msg: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}")
