"""Whether the correlate state in memory can be written: a step cut off half-way cannot."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import structlog

log = structlog.get_logger("stormwatch.worker")


def exit_inconsistent(exc: BaseException) -> NoReturn:
    """A step failed after changing in-memory state, which can no longer be written as a
    consistent checkpoint: exit at once, as a crash would. The restarted worker resumes the
    last state written and reads the messages after it again (nothing acknowledged is lost)."""
    log.critical("correlate step failed half-way; exiting to resume from Redis", error=repr(exc))
    os._exit(70)


class StateGuard:
    """``consistent`` is False while a block that changes correlate state runs; a failure
    inside such a block goes to ``on_fatal`` (default: exit at once) and the state stays
    marked inconsistent, so nothing writes it."""

    def __init__(self, on_fatal: Callable[[BaseException], NoReturn] | None = None) -> None:
        self.on_fatal: Callable[[BaseException], NoReturn] = on_fatal or exit_inconsistent
        self.consistent = True

    @contextmanager
    def changing(self) -> Iterator[None]:
        self.consistent = False
        try:
            yield
        except Exception as exc:
            self.on_fatal(exc)
        self.consistent = True
