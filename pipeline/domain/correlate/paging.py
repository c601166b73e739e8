"""The paging gate: per-severity N-of-M rules that decide when an incident pages."""

from __future__ import annotations

from pipeline.domain.correlate.settings import CorrelationSettings
from pipeline.domain.correlate.state import IncidentState, members_in_all
from pipeline.domain.schemas import SEVERITY_RANK, Severity


def count_member(st: IncidentState, sev: int) -> None:
    """Count a new member of severity rank ``sev`` in the gate's per-severity tally.

    The tally counts every member, forgotten ones too (merges add, splits recount). It is
    kept only while it is valid; :meth:`PagingGate.reached` rebuilds it otherwise.
    """
    if len(st.sev_n) == len(SEVERITY_RANK):
        st.sev_n[sev] += 1


class PagingGate:
    """``settings.page_gates``: page once ``n`` member alerts of at least a severity fired
    within ``window_s`` seconds (0 = over the whole incident); ``n = 0`` disables a rule."""

    __slots__ = ("gates", "slack")

    def __init__(self, settings: CorrelationSettings) -> None:
        self.gates: list[tuple[int, int, float]] = [
            (SEVERITY_RANK[Severity(sev)], n, w) for sev, n, w in settings.page_gates if n > 0
        ]
        self.slack = settings.allowed_lateness_s

    def reached(self, st: IncidentState, t: float) -> bool:
        """Is a rule met at ``t``? O(alerts in the rule's window), not O(members)."""
        if not self.gates:
            return False
        members = st.members
        counts = st.sev_n
        if len(counts) != len(SEVERITY_RANK) or sum(counts) != members_in_all(st):
            # not counted yet (a hand-built or old state): the forgotten members, then the rest
            arch = st.archive
            if arch is not None and arch.sev_n:
                counts = list(arch.sev_n)
            else:
                counts = [0] * len(SEVERITY_RANK)
            for m in members:
                counts[m.sev] += 1
            st.sev_n = counts
        # members are in arrival order, at most allowed_lateness_s out of event-time order,
        # unless a merge appended older ones; windowed rules see the members still held
        ordered = not st.merged_from
        slack = self.slack
        for sev, n, window in self.gates:
            if window <= 0:
                if sum(counts[sev:]) >= n:
                    return True
                continue
            lo = t - window
            stop = lo - slack
            count = 0
            for m in reversed(members):
                if m.t < lo:
                    if ordered and m.t < stop:
                        break
                    continue
                if m.sev >= sev:
                    count += 1
                    if count >= n:
                        return True
        return False
