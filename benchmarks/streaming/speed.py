"""How fast this machine's CPU is while a run goes on.

The bench machine is a shared virtual machine: the same pure-Python work measured 0.39 s of
CPU time on one minute and 0.76 s a few minutes later (2026-12-07), with no steal time shown.
A ratio of two runs taken minutes apart (the storm's scaling factor) then says as much about
the host as about stormwatch. :class:`SpeedProbe` runs a fixed unit of interpreter work once a
second in a thread of the bench process and records the CPU time it took (``thread_time``, so
waiting for the GIL or a core does not count, only how fast the core ran it); the run's median
says how fast the machine was, and two runs' medians say whether their ratio can be trusted.
"""

from __future__ import annotations

import statistics
import threading
import time
from types import TracebackType

#: iterations of :func:`unit`: about 5 ms of CPU on this machine when it is quiet
UNIT_ITERATIONS = 20_000


def unit() -> int:
    """A fixed piece of interpreter work (arithmetic, dict and list operations)."""
    d: dict[int, int] = {}
    out: list[int] = []
    for i in range(UNIT_ITERATIONS):
        d[i & 255] = d.get(i & 255, 0) + i * i % 7
        if i % 64 == 0:
            out.append(len(d))
    return sum(out)


class SpeedProbe:
    """Times :func:`unit` every ``period_s`` in a daemon thread while the block runs."""

    def __init__(self, period_s: float = 1.0) -> None:
        self.period_s = period_s
        #: CPU milliseconds each unit took
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="speed-probe", daemon=True)

    def __enter__(self) -> SpeedProbe:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            started = time.thread_time()
            unit()
            self.samples.append(1000 * (time.thread_time() - started))

    @property
    def median_ms(self) -> float:
        """Median CPU milliseconds of one unit (nan before the first sample)."""
        return statistics.median(self.samples) if self.samples else float("nan")
