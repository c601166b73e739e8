"""Ranking, suppression and explanation of hand-built incidents."""

from __future__ import annotations

from pipeline.domain.correlate.ranking import Ranker
from pipeline.domain.correlate.settings import CorrelationSettings
from pipeline.domain.correlate.state import IncidentState
from pipeline.domain.graphs import GraphIndex
from tests.unit.correlate_parts import TOPO, add_member, new_state


def ranker(**kw: object) -> Ranker:
    s = CorrelationSettings(**kw)  # type: ignore[arg-type]
    return Ranker(GraphIndex(TOPO, s.hops), s)


def db_storm() -> IncidentState:
    st = new_state("inc-db")
    add_member(st, "db", 0, kind="saturation")
    add_member(st, "payment", 20, kind="latency", sev="warning")
    add_member(st, "cart", 25, kind="error")
    add_member(st, "checkout", 40, kind="latency", sev="warning")
    add_member(st, "frontend", 60, kind="error")
    return st


def test_rerank_names_the_root_cause_and_explains_it() -> None:
    r = ranker()
    st = db_storm()
    st.pending = 3
    r.rerank(st)
    inc = st.inc
    assert inc.root_cause == "db"
    assert inc.root_cause_candidates[0].service == "db"
    scores = [c.score for c in inc.root_cause_candidates]
    assert scores == sorted(scores, reverse=True)
    assert st.pending == 0
    assert "db" in inc.explanation


def test_established_root_suppresses_its_symptoms_only() -> None:
    r = ranker(suppress_min_score=0.0)
    st = db_storm()
    add_member(st, "search", 70, kind="traffic", fp="search-traffic")
    r.rerank(st)
    assert st.supp_root == "db"
    flags = {ref.service: ref.suppressed for ref in st.inc.alerts}
    # the root and its own saturation alert stay; callers in its blast radius are symptoms
    assert flags == {
        "db": False,
        "payment": True,
        "cart": True,
        "checkout": True,
        "frontend": True,
        "search": True,
    }


def test_no_suppression_below_the_score_threshold() -> None:
    r = ranker(suppress_min_score=1.0)
    st = db_storm()
    r.rerank(st)
    assert r.root_established(st) is None
    assert st.supp_root is None
    assert not any(ref.suppressed for ref in st.inc.alerts)


def test_is_symptom_rules() -> None:
    r = ranker()
    st = new_state("inc-1")
    add_member(st, "payment", 0)
    st.confirmed = "payment"  # established root: payment (callers: checkout, frontend)
    assert not r.is_symptom(st, "payment", "error")  # the root itself
    assert not r.is_symptom(st, "checkout", "saturation")  # a local resource problem
    assert r.is_symptom(st, "db", "traffic")  # a traffic drop anywhere
    assert r.is_symptom(st, "frontend", "latency")  # a transitive caller
    assert not r.is_symptom(st, "cart", "error")  # not a caller of payment
    st.confirmed = "not-in-topology"
    assert not r.is_symptom(st, "frontend", "error")


def test_confirmed_root_cause_ranks_first() -> None:
    r = ranker()
    st = db_storm()
    st.confirmed = "cart"
    r.rerank(st)
    first = st.inc.root_cause_candidates[0]
    assert st.inc.root_cause == "cart"
    assert (first.service, first.score, first.reasons) == (
        "cart",
        1.0,
        ["confirmed by a responder"],
    )
    assert [c.service for c in st.inc.root_cause_candidates].count("cart") == 1
    assert r.root_established(st) == "cart"
    assert "cart" in st.inc.explanation


def test_evidence_changes_are_ranked_in_batches_above_rerank_every_upto() -> None:
    r = ranker(rerank_every_upto=1, rerank_growth=1.0)
    st = new_state("inc-1")
    add_member(st, "payment", 0)
    add_member(st, "checkout", 5)
    r.evidence_changed(st)  # 1 change < 1.0 x 2 services: later
    assert st.pending == 1 and st.inc.root_cause is None
    r.evidence_changed(st)
    assert st.pending == 0 and st.inc.root_cause is not None


def test_small_incidents_are_ranked_on_every_change() -> None:
    r = ranker(rerank_every_upto=16)
    st = new_state("inc-1")
    add_member(st, "db", 0, kind="saturation")
    r.evidence_changed(st)
    assert st.pending == 0 and st.inc.root_cause == "db"


def test_refresh_explanation_without_ranking_uses_the_candidates() -> None:
    r = ranker()
    st = db_storm()
    r.rerank(st)
    before = st.inc.explanation
    st.inc.explanation = ""
    r.refresh_explanation(st)
    assert st.inc.explanation == before
