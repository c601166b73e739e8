"""The online models a worker trains, restored from and checkpointed to Redis.

The scorer learns in the correlate role (from feedback), the metric detectors in the metrics
role. A process without the role never writes that model; two processes with the same role
share one key, and the last writer wins (see README).
"""

from __future__ import annotations

import asyncio

import structlog

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.metrics import Metrics
from pipeline.config import Settings
from pipeline.domain.detectors import DetectorBank
from pipeline.domain.oncall.recommend import Recommender
from pipeline.domain.scoring import AlertScorer

MODELS_CHECKPOINT = "models:scorer"
DETECTORS_CHECKPOINT = "models:detectors"
RESPONDERS_CHECKPOINT = "models:responders"

log = structlog.get_logger("stormwatch.worker")


class Models:
    def __init__(
        self, settings: Settings, store: RedisStore, roles: frozenset[str], metrics: Metrics
    ) -> None:
        self.store = store
        self.roles = roles
        self.metrics = metrics
        data = store.load_checkpoint(MODELS_CHECKPOINT)
        self.scorer = (
            AlertScorer.restore(data, settings.scoring) if data else AlertScorer(settings.scoring)
        )
        data = store.load_checkpoint(DETECTORS_CHECKPOINT)
        self.detectors = (
            DetectorBank.restore(data, settings.detection)
            if data
            else DetectorBank(settings.detection)
        )
        data = store.load_checkpoint(RESPONDERS_CHECKPOINT)
        #: the responder recommender (learns in the correlate role, from resolutions)
        self.recommender = Recommender.loads(data) if data else Recommender()

    def checkpoints(self) -> dict[str, bytes]:
        """Snapshots of the models this process trains (take them on the event loop, where
        the models never change mid-pickle)."""
        out: dict[str, bytes] = {}
        if "correlate" in self.roles:
            out[MODELS_CHECKPOINT] = self.scorer.snapshot()
            out[RESPONDERS_CHECKPOINT] = self.recommender.dumps()
        if "metrics" in self.roles:
            out[DETECTORS_CHECKPOINT] = self.detectors.snapshot()
        return out

    def save(self) -> None:
        """Write the checkpoints now (blocking)."""
        self.store.commit(dedup_states={}, checkpoints=self.checkpoints(), incidents={})

    async def write(self, checkpoints: dict[str, bytes]) -> None:
        """Write snapshots in a thread; if Redis is unreachable the next period writes them."""
        try:
            await asyncio.to_thread(
                self.store.commit, dedup_states={}, checkpoints=checkpoints, incidents={}
            )
        except self.store.unavailable as exc:
            self.metrics.persist_failures.inc()
            log.warning("model checkpoint not written", error=str(exc))
