"""Who should respond to an incident: a ranked list of people, each with a one-line reason.

Candidates are the members and on-call people of the teams owning the incident's root
cause, candidates and services and their graph neighbours' owners, the past resolvers of
those services, and the people an escalation step names. **Availability is a hard
constraint**: only people on call now (any schedule of the directory) or named by an
escalation step are ever recommended. Each one's score is

    expertise (learned online, :mod:`.recommend_model`) x availability (1) x load factor

where the load factor (:mod:`.recommend_load`) spreads pages among people who fit about as
well. :meth:`Recommender.learn` updates expertise the moment a resolution names its
resolver. The state (model, resolution history, page load) pickles for a checkpoint; the
directory is not part of it (the caller passes an :class:`OnCallView` of its version).
"""

from __future__ import annotations

import pickle
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.domain.oncall.recommend_input import IncidentSummary, features
from pipeline.domain.oncall.recommend_load import PageLoad
from pipeline.domain.oncall.recommend_model import Expertise
from pipeline.domain.oncall.recommend_oncall import Duty, OnCallView
from pipeline.domain.oncall.wallclock import utc

#: a service's graph neighbours (callers and dependencies); None: no graph
Neighbours = Callable[[str], Iterable[str]]

#: duty features in tie-break order (before any feedback: the owning team's primary first)
DUTY_ORDER = (
    "named",
    "duty:rc-primary",
    "duty:rc-secondary",
    "duty:svc-team",
    "duty:neighbour-team",
    "member:rc-team",
    "member:svc-team",
    "member:neighbour-team",
    "duty:other",
)
MAX_RESOLVERS_PER_SERVICE = 32
MAX_HISTORY_PER_KEY = 64


@dataclass(frozen=True, slots=True)
class RecommendSettings:
    """``top_k`` people returned; at most ``max_candidates`` scored; ``max_negatives`` other
    available people learned as non-resolvers per resolution."""

    top_k: int = 3
    max_candidates: int = 40
    max_negatives: int = 12
    history_window: timedelta = timedelta(days=30)
    load_window: timedelta = timedelta(hours=24)
    load_penalty: float = 0.05
    learning_rate: float = 0.3


@dataclass(frozen=True, slots=True)
class Recommendation:
    """``person`` with ``score`` = ``expertise`` x availability x load factor, and why."""

    person: str
    score: float
    expertise: float
    reason: str
    duty: Duty | None = None


@dataclass(slots=True)
class _Candidate:
    person: str
    duties: list[str]
    duty: Duty | None
    order: int


class Recommender:
    """Ranks responders for incidents and learns from who resolved them (semantics above)."""

    def __init__(self, settings: RecommendSettings | None = None) -> None:
        self.settings = settings or RecommendSettings()
        self.expertise = Expertise(self.settings.learning_rate)
        self.load = PageLoad(self.settings.load_window, self.settings.load_penalty)
        #: service -> recent resolvers, newest last
        self._resolvers: dict[str, deque[str]] = {}
        #: (person, service) -> times they resolved an incident caused there
        self._history: dict[tuple[str, str], deque[datetime]] = {}

    def configure(self, settings: RecommendSettings) -> Recommender:
        """Use ``settings`` from now on (a restored checkpoint keeps what it learned)."""
        self.settings = settings
        self.load.window, self.load.penalty = settings.load_window, settings.load_penalty
        return self

    def recommend(
        self,
        incident: IncidentSummary,
        oncall: OnCallView,
        neighbours: Neighbours | None = None,
    ) -> list[Recommendation]:
        """The ``top_k`` available people for ``incident``, best first (empty: nobody on
        call fits)."""
        at = utc(incident.at)
        x = features(incident)
        scored: list[tuple[float, int, str, float, _Candidate]] = []
        for c in self._candidates(incident, oncall, neighbours, at):
            fit = self.expertise.score(c.person, x, c.duties)
            score = fit * self.load.factor(c.person, at)
            scored.append((-score, c.order, c.person, fit, c))
        scored.sort(key=lambda s: s[:3])
        return [
            Recommendation(c.person, -neg, fit, self._reason(c, incident, at), c.duty)
            for neg, _, _, fit, c in scored[: self.settings.top_k]
        ]

    def learn(
        self,
        incident: IncidentSummary,
        resolver: str,
        oncall: OnCallView,
        neighbours: Neighbours | None = None,
    ) -> None:
        """``resolver`` resolved ``incident``: a positive for them, negatives for the other
        people who were available when it opened (the best-scored first)."""
        at = utc(incident.at)
        x = features(incident)
        candidates = self._candidates(incident, oncall, neighbours, at)
        mine = next((c for c in candidates if c.person == resolver), None)
        duties = mine.duties if mine else self._duties_of(resolver, incident, oncall, at)
        others = [c for c in candidates if c.person != resolver]
        others.sort(key=lambda c: -self.expertise.score(c.person, x, c.duties))
        self.expertise.learn(resolver, x, duties, True)
        for c in others[: self.settings.max_negatives]:
            self.expertise.learn(c.person, x, c.duties, False)
        self._remember(incident, resolver, at)

    def note_paged(self, person: str, at: datetime) -> None:
        """``person`` was paged (counts towards their recent load)."""
        self.load.note(person, utc(at))

    def resolved_count(self, person: str, service: str, at: datetime) -> int:
        """Incidents caused at ``service`` that ``person`` resolved in the history window."""
        times = self._history.get((person, service))
        if not times:
            return 0
        since = utc(at) - self.settings.history_window
        return sum(1 for t in times if since < t <= utc(at))

    def dumps(self) -> bytes:
        """The whole state (model, history, load) for a checkpoint."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(data: bytes) -> Recommender:
        """A recommender from :meth:`dumps` (trusted bytes: our own checkpoint)."""
        obj = pickle.loads(data)
        if not isinstance(obj, Recommender):
            raise ValueError(f"not a recommender checkpoint ({type(obj).__name__})")
        return obj

    def _remember(self, incident: IncidentSummary, resolver: str, at: datetime) -> None:
        for service in incident.focus[:3]:
            resolvers = self._resolvers.setdefault(service, deque(maxlen=MAX_RESOLVERS_PER_SERVICE))
            if resolver in resolvers:
                resolvers.remove(resolver)
            resolvers.append(resolver)
        if incident.focus:
            key = (resolver, incident.focus[0])
            self._history.setdefault(key, deque(maxlen=MAX_HISTORY_PER_KEY)).append(at)

    def _teams(
        self, incident: IncidentSummary, oncall: OnCallView, neighbours: Neighbours | None
    ) -> tuple[str | None, set[str], set[str]]:
        """The root cause's team, the other focus services' teams, the neighbours' teams."""
        focus = incident.focus
        owners = [t for t in (oncall.team_of(s) for s in focus) if t is not None]
        rc_team = owners[0] if owners else None
        svc_teams = set(owners) - {rc_team} if rc_team else set(owners)
        near: set[str] = set()
        if neighbours is not None and focus:
            for s in neighbours(focus[0]):
                team = oncall.team_of(s)
                if team is not None and team != rc_team and team not in svc_teams:
                    near.add(team)
        return rc_team, svc_teams, near

    def _duties_of(
        self, person: str, incident: IncidentSummary, oncall: OnCallView, at: datetime
    ) -> list[str]:
        rc_team, svc_teams, near = self._teams(incident, oncall, None)
        duties = oncall.duties(at, oncall.schedules_of(person)).get(person, [])
        return _duty_features(person, duties, oncall, rc_team, svc_teams, near, incident)

    def _candidates(
        self,
        incident: IncidentSummary,
        oncall: OnCallView,
        neighbours: Neighbours | None,
        at: datetime,
    ) -> list[_Candidate]:
        rc_team, svc_teams, near = self._teams(incident, oncall, neighbours)
        involved = [t for t in (rc_team, *sorted(svc_teams), *sorted(near)) if t is not None]
        people: dict[str, None] = dict.fromkeys(incident.named)
        schedules: set[str] = set()
        for team_id in involved:
            team = oncall.directory.teams.get(team_id)
            if team is not None:
                people.update(dict.fromkeys(team.members))
                schedules.update(team.schedules)
        for service in incident.focus[:3]:
            people.update(dict.fromkeys(reversed(self._resolvers.get(service, ()))))
        for person in people:
            schedules |= oncall.schedules_of(person)
        # only the schedules that matter are asked: availability stays cheap in big companies
        on_call = oncall.duties(at, schedules)
        for person, duties in on_call.items():
            if any(d.team in involved for d in duties):
                people.setdefault(person, None)
        out: list[_Candidate] = []
        named = set(incident.named)
        for person in people:
            duties = on_call.get(person, [])
            if not duties and person not in named:
                continue  # availability is a hard constraint
            feats = _duty_features(person, duties, oncall, rc_team, svc_teams, near, incident)
            order = min((DUTY_ORDER.index(f) for f in feats if f in DUTY_ORDER), default=99)
            duty = _best_duty(duties, rc_team, svc_teams)
            out.append(_Candidate(person, feats, duty, order))
            if len(out) >= self.settings.max_candidates:
                break
        return out

    def _reason(self, c: _Candidate, incident: IncidentSummary, at: datetime) -> str:
        service = incident.focus[0] if incident.focus else None
        parts: list[str] = []
        count = self.resolved_count(c.person, service, at) if service else 0
        days = self.settings.history_window.days
        if count:
            noun = "incident" if count == 1 else "incidents"
            parts.append(f"resolved {count} similar {service} {noun} in {days} days")
        elif service and c.person in self._resolvers.get(service, ()):
            parts.append(f"has resolved {service} incidents before")
        else:
            parts.append("no similar resolutions yet")
        if c.duty is not None:
            parts.append(c.duty.describe())
        if c.person in incident.named:
            parts.append("named by the escalation step")
        recent = self.load.recent(c.person, at)
        if recent:
            parts.append(f"paged {recent}x in the last {_hours(self.settings.load_window)}")
        return "; ".join(parts)


def _hours(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours} h"


def _best_duty(duties: list[Duty], rc_team: str | None, svc_teams: set[str]) -> Duty | None:
    """The duty to show: for the root cause's team, then another involved team, then any."""
    for wanted in (lambda d: d.team == rc_team, lambda d: d.team in svc_teams):
        for d in duties:
            if wanted(d):
                return d
    return duties[0] if duties else None


def _duty_features(
    person: str,
    duties: list[Duty],
    oncall: OnCallView,
    rc_team: str | None,
    svc_teams: set[str],
    near: set[str],
    incident: IncidentSummary,
) -> list[str]:
    """What ties ``person`` to the incident: their duties now and their team memberships."""
    out: list[str] = []
    if person in incident.named:
        out.append("named")
    for d in duties:
        if d.team == rc_team:
            out.append("duty:rc-primary" if d.rank == 0 else "duty:rc-secondary")
        elif d.team in svc_teams:
            out.append("duty:svc-team")
        elif d.team in near:
            out.append("duty:neighbour-team")
        else:
            out.append("duty:other")
    teams = oncall.directory.teams
    if rc_team and person in teams[rc_team].members:
        out.append("member:rc-team")
    if any(person in teams[t].members for t in svc_teams if t in teams):
        out.append("member:svc-team")
    if any(person in teams[t].members for t in near if t in teams):
        out.append("member:neighbour-team")
    return list(dict.fromkeys(out))
