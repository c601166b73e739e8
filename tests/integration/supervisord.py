"""A real supervisord for remediation tests (``pipeline.app.supervised``: the pinned
``supervisor`` package's ``supervisord``, started on a free port)."""

from __future__ import annotations

from pipeline.app.supervised import SLEEPER, Supervisord, start_supervisord

__all__ = ["SLEEPER", "Supervisord", "start_supervisord"]
