"""Simulated responder feedback on replayed incidents, as people give it: not an oracle.

* **Acknowledgements**: an incident that paged is acknowledged (``ack_share`` of them) after a
  lognormal delay (median 4 min) from its opening, and resolved by hand (``resolve``) a
  lognormal delay (median 10 min) after its alerts cleared.
* **Verdicts** on a seeded share (``verdict_share``) of the closed incidents, a lognormal delay
  (median 30 min) after they resolved. The verdict comes from the truth as in
  :mod:`benchmarks.feedback` (:func:`benchmarks.feedback.truth_verdict`: ``noise`` when the
  incident holds no alert of an injected fault, else ``actionable``), and is the wrong one
  with probability ``verdict_error``.

Seeded and deterministic; every message carries its own timestamp, and the list is in time
order (as on the ``feedback`` topic).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from benchmarks.feedback import truth_verdict
from pipeline.domain.schemas import Feedback, FeedbackAction, Incident, Verdict

#: median delays in seconds (lognormal, sigma ``_SIGMA``)
ACK_MEDIAN_S = 240.0
RESOLVE_MEDIAN_S = 600.0
VERDICT_MEDIAN_S = 1800.0
_SIGMA = 0.8


@dataclass(frozen=True)
class FeedbackSetting:
    """How responders give feedback in one simulated run."""

    verdict_share: float = 0.5
    verdict_error: float = 0.1
    ack_share: float = 0.9
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("verdict_share", "verdict_error", "ack_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")

    def describe(self) -> dict[str, Any]:
        """The setting and the simulation's delays (without the seed)."""
        return {
            **{k: v for k, v in asdict(self).items() if k != "seed"},
            "ack_median_s": ACK_MEDIAN_S,
            "resolve_median_s": RESOLVE_MEDIAN_S,
            "verdict_median_s": VERDICT_MEDIAN_S,
        }


def _delay(rng: random.Random, median_s: float) -> timedelta:
    return timedelta(seconds=rng.lognormvariate(math.log(median_s), _SIGMA))


def simulate(
    incidents: Sequence[Incident],
    alert_fault: Mapping[str, str | None],
    setting: FeedbackSetting,
) -> list[Feedback]:
    """Feedback messages for the closed ``incidents`` (in time order)."""
    rng = random.Random(setting.seed)
    out: list[Feedback] = []
    for inc in sorted(incidents, key=lambda i: (i.opened_at, i.id)):
        if inc.resolved_at is None or inc.merged_into:
            continue
        user = f"oncall-{rng.randrange(5)}"
        if inc.page and rng.random() < setting.ack_share:
            acked = inc.opened_at + _delay(rng, ACK_MEDIAN_S)
            out.append(_fb(inc.id, FeedbackAction.ack, acked, user))
            done = max(acked, inc.resolved_at) + _delay(rng, RESOLVE_MEDIAN_S)
            out.append(_fb(inc.id, FeedbackAction.resolve, done, user))
        if rng.random() < setting.verdict_share:
            verdict = truth_verdict(inc.alert_ids, alert_fault)
            if rng.random() < setting.verdict_error:
                verdict = Verdict.noise if verdict is Verdict.actionable else Verdict.actionable
            at = inc.resolved_at + _delay(rng, VERDICT_MEDIAN_S)
            out.append(_fb(inc.id, FeedbackAction.verdict, at, user, verdict))
    out.sort(key=lambda f: (f.timestamp, f.incident_id, f.action.value))
    return out


def _fb(
    incident_id: str,
    action: FeedbackAction,
    at: Any,
    user: str,
    verdict: Verdict | None = None,
) -> Feedback:
    return Feedback(
        incident_id=incident_id, action=action, timestamp=at, user=user, verdict=verdict
    )
