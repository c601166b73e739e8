"""The learned success rate of a runbook per kind of root cause (River ``proba.Beta``).

Each outcome updates a Beta posterior per (runbook, root-cause kind): verified is a
success; rolled back, failed verification, failed execution and a person's denial are
failures. The rate the confidence gate reads is the posterior mean, starting from the
prior (1, 1) = 0.5. Every update yields a :class:`SuccessUpdate` for the audit trail, and
the model snapshots to plain counts.
"""

from __future__ import annotations

from typing import Any

import msgspec
from river import proba

from pipeline.domain.remediation.audit import AuditKind

#: outcomes that teach the model, and what they teach
OUTCOMES: dict[AuditKind, bool] = {
    AuditKind.verified: True,
    AuditKind.verification_failed: False,
    AuditKind.rolled_back: False,
    AuditKind.failed: False,
    AuditKind.denied: False,
}


class SuccessUpdate(msgspec.Struct, kw_only=True):
    runbook_id: str
    kind: str
    outcome: str
    success: bool
    rate_before: float
    rate_after: float
    n: int


class SuccessModel:
    """Beta posterior of success per (runbook id, root-cause kind)."""

    def __init__(self, prior: tuple[int, int] = (1, 1)) -> None:
        self.prior = prior
        self._beta: dict[tuple[str, str], proba.Beta] = {}

    def _get(self, runbook_id: str, kind: str) -> proba.Beta:
        key = (runbook_id, kind)
        if key not in self._beta:
            self._beta[key] = proba.Beta(*self.prior)
        return self._beta[key]

    def rate(self, runbook_id: str, kind: str) -> float:
        beta = self._beta.get((runbook_id, kind))
        a, b = (beta.alpha, beta.beta) if beta is not None else self.prior
        return float(a / (a + b))

    def learn(self, runbook_id: str, kind: str, outcome: AuditKind) -> SuccessUpdate | None:
        """Teach one outcome (kinds outside :data:`OUTCOMES` teach nothing: None)."""
        if outcome not in OUTCOMES:
            return None
        success = OUTCOMES[outcome]
        before = self.rate(runbook_id, kind)
        beta = self._get(runbook_id, kind)
        beta.update(success)
        return SuccessUpdate(
            runbook_id=runbook_id,
            kind=kind,
            outcome=str(outcome),
            success=success,
            rate_before=before,
            rate_after=self.rate(runbook_id, kind),
            n=beta.alpha + beta.beta - sum(self.prior),
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "prior": list(self.prior),
            "counts": [[r, k, b.alpha, b.beta] for (r, k), b in sorted(self._beta.items())],
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> SuccessModel:
        model = cls(prior=(int(data["prior"][0]), int(data["prior"][1])))
        for runbook_id, kind, alpha, beta in data["counts"]:
            model._beta[(runbook_id, kind)] = proba.Beta(int(alpha), int(beta))
        return model
