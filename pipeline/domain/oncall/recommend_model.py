"""Expertise: how likely a person is to resolve an incident, learned online from resolutions.

One River logistic regression over hashed features scores (person, incident) pairs, the
pointwise learning-to-rank set-up of bug-triage and ticket-routing systems. Every incident
feature is crossed with the person (``alice|rc:checkoutservice``), so each person has their
own weights (their skill profile) in one bounded table (the hashing trick, ``2**20``
buckets); a per-person bias says how often they take incidents at all, and shared duty
features (``duty:rc-primary``, ``member:rc-team`` ...) learn how much being the owning
team's primary matters in this company. Each resolution is one positive (the resolver) and
negatives for the other people who were available: learning is immediate, per resolution,
with per-feature AdaGrad steps (rare people and services learn as fast as common ones).
Before any feedback every score is 0.5 and the caller's tie-break (duty order) decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from river import linear_model, optim, preprocessing

N_FEATURES = 1 << 20
HASH_SEED = 16


class Expertise:
    """The model; picklable (a River estimator and a seeded hasher)."""

    def __init__(self, learning_rate: float = 0.3, l2: float = 1e-5) -> None:
        self.hasher = preprocessing.FeatureHasher(n_features=N_FEATURES, seed=HASH_SEED)
        self.model = linear_model.LogisticRegression(
            optimizer=optim.AdaGrad(lr=learning_rate),
            l2=l2,
            intercept_lr=0.0,
        )
        self.updates = 0

    def vector(
        self, person: str, incident: Mapping[str, float], duties: Iterable[str]
    ) -> dict[int, float]:
        """The hashed feature vector of ``person`` for an incident's features."""
        x: dict[str, float] = {f"{person}|{k}": v for k, v in incident.items()}
        x[f"{person}|bias"] = 1.0
        for d in duties:
            x[d] = 1.0
            x[f"{person}|{d}"] = 0.5
        hashed: dict[int, float] = self.hasher.transform_one(x)
        return hashed

    def score(self, person: str, incident: Mapping[str, float], duties: Iterable[str]) -> float:
        """P(``person`` resolves the incident | they are available with these duties)."""
        proba = self.model.predict_proba_one(self.vector(person, incident, duties))
        return float(proba.get(True, 0.5))

    def learn(
        self,
        person: str,
        incident: Mapping[str, float],
        duties: Iterable[str],
        resolved: bool,
    ) -> None:
        """One labelled pair: ``person`` did (or did not) resolve the incident."""
        self.model.learn_one(self.vector(person, incident, duties), resolved)
        self.updates += 1
