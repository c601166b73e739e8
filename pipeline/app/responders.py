"""Responder recommendations in the worker (docs/oncall.md, "Responder recommendation").

The on-call directory comes from Redis (``stormwatch oncall load``) and is reloaded when its
version moves, checked every ``responders.refresh_s`` in a thread; its timelines are
computed then, for the day behind and the two weeks ahead, so recommending stays off the
schedules' costly path. Every published incident gets ``responders`` (annotate stage); the
first recommendation of an incident counts as a page for load spreading; a resolution on
``feedback`` that names its resolver (``user``) teaches the model at once. The model is
checkpointed with the others (:mod:`pipeline.app.models`).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta

import structlog

from pipeline.adapters.oncall_store import OnCallStore
from pipeline.adapters.redis_store import RedisStore
from pipeline.config import ResponderSettings
from pipeline.domain.oncall.recommend import Recommender, RecommendSettings
from pipeline.domain.oncall.recommend_input import IncidentSummary
from pipeline.domain.oncall.recommend_oncall import OnCallView
from pipeline.domain.schemas import Feedback, FeedbackAction, Incident, ResponderRef
from pipeline.domain.topology import Topology

log = structlog.get_logger("stormwatch.worker")

BEHIND = timedelta(days=1)
AHEAD = timedelta(days=14)
MAX_PAGED_KEPT = 10_000
MAX_REASON = 300


def recommend_settings(settings: ResponderSettings) -> RecommendSettings:
    return RecommendSettings(top_k=settings.top_k, load_penalty=settings.load_penalty)


class Responders:
    """Recommendations for published incidents, learning from resolutions."""

    def __init__(
        self, settings: ResponderSettings, store: RedisStore, topology: Topology, model: Recommender
    ) -> None:
        self.settings = settings
        client = getattr(store, "r", None)  # the in-memory store of unit tests has no directory
        self.oncall = OnCallStore(client, store.prefix) if client is not None else None
        self.topology = topology
        self.model = model.configure(recommend_settings(settings))
        #: the directory as last loaded (None: none stored yet)
        self.view: OnCallView | None = None
        self._prepared_until: datetime | None = None
        self._paged: OrderedDict[str, None] = OrderedDict()

    def refresh(self, now: datetime | None = None) -> None:
        """Reload the directory if its version moved (or its timelines run out soon);
        blocking Redis reads: call it in a thread."""
        now = now or datetime.now(UTC)
        version = self.oncall.version() if self.oncall is not None else 0
        if self.oncall is None or version == 0:
            self.view = None
            return
        view = self.view
        fresh = view is not None and view.version == version
        if fresh and self._prepared_until is not None and now + AHEAD / 2 < self._prepared_until:
            return
        new = OnCallView(self.oncall.directory(), version)
        new.prepare(now - BEHIND, now + AHEAD)
        self.view, self._prepared_until = new, now + AHEAD
        if not fresh:
            log.info("on-call directory loaded for recommendations", version=version)

    def _neighbours(self, service: str) -> set[str]:
        return self.topology.callers(service) | self.topology.dependencies(service)

    def annotate(self, incident: Incident) -> list[ResponderRef]:
        """The incident's recommended responders (none without a directory)."""
        view = self.view
        if view is None or not self.settings.enabled:
            return []
        ranked = self.model.recommend(IncidentSummary.of(incident), view, self._neighbours)
        if ranked and incident.id not in self._paged:
            self._paged[incident.id] = None
            if len(self._paged) > MAX_PAGED_KEPT:
                self._paged.popitem(last=False)
            self.model.note_paged(ranked[0].person, incident.opened_at)
        people = view.directory.people
        out = []
        for r in ranked:
            person = people.get(r.person)
            out.append(
                ResponderRef(
                    person=r.person,
                    score=round(r.score, 4),
                    reason=r.reason[:MAX_REASON],
                    name=person.name if person else "",
                    team=r.duty.team if r.duty else None,
                    until=r.duty.hold.until if r.duty else None,
                    contact=dict(person.handles) if person else {},
                )
            )
        return out

    def learn(self, incident: Incident, fb: Feedback) -> bool:
        """Learn from a resolution that names its resolver; True if the model changed."""
        view = self.view
        if fb.action is not FeedbackAction.resolve or not fb.user or view is None:
            return False
        self.model.learn(IncidentSummary.of(incident), fb.user, view, self._neighbours)
        return True
