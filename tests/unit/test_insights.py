"""Insights domain: alert quality, recurring incidents, timings, topology findings, bounds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import networkx as nx
import pytest

from pipeline.domain.insights import Insights, InsightsSettings
from pipeline.domain.insights.stats import (
    bh_qvalues,
    cooccurrence_p,
    lower_bound,
)
from pipeline.domain.insights.topology import Basket, stale_edges, suggest_edges
from pipeline.domain.schemas import (
    AlertCount,
    AlertRef,
    AlertStatus,
    EventType,
    Feedback,
    FeedbackAction,
    Incident,
    IncidentEvent,
    IncidentStatus,
    RootCauseCandidate,
    Severity,
    Verdict,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def incident(
    iid: str,
    at: float,
    alerts: list[tuple[str, str, float]],
    *,
    root: str | None = None,
    lasts: float = 600.0,
    page: bool = True,
    severity: Severity = Severity.warning,
) -> Incident:
    """A resolved incident opened ``at`` seconds after T0 with (service, name, offset) alerts
    that each resolved 60 s after firing."""
    refs = [
        AlertRef(
            id=f"{iid}-{n}",
            service=s,
            name=name,
            severity=severity,
            status=AlertStatus.resolved,
            timestamp=T0 + timedelta(seconds=at + off),
            resolved_at=T0 + timedelta(seconds=at + off + 60),
        )
        for n, (s, name, off) in enumerate(alerts)
    ]
    counts: dict[tuple[str, str], int] = {}
    for s, name, _ in alerts:
        counts[(s, name)] = counts.get((s, name), 0) + 1
    return Incident(
        id=iid,
        status=IncidentStatus.resolved,
        opened_at=T0 + timedelta(seconds=at),
        updated_at=T0 + timedelta(seconds=at + lasts),
        resolved_at=T0 + timedelta(seconds=at + lasts),
        severity=severity,
        alerts=refs,
        alert_ids=[r.id for r in refs],
        services=sorted({s for s, _, _ in alerts}),
        root_cause=root or alerts[0][0],
        root_cause_candidates=[RootCauseCandidate(service=root or alerts[0][0], score=1.0)],
        page=page,
        alert_count=len(refs),
        alert_counts=[AlertCount(service=s, name=n, count=c) for (s, n), c in counts.items()],
    )


def fb(iid: str, action: FeedbackAction, at: float, **kw: object) -> Feedback:
    return Feedback(incident_id=iid, action=action, timestamp=T0 + timedelta(seconds=at), **kw)  # type: ignore[arg-type]


def test_stats_helpers_agree_with_textbook_values() -> None:
    assert lower_bound(0, 0, 0.05) == 0.0
    assert 0.65 < lower_bound(7, 7, 0.05) < 0.8
    # two services in half of 10 incidents each sharing all 5 is unlikely by chance
    assert cooccurrence_p(5, 10, 5, 5) == pytest.approx(1 / 252)
    assert cooccurrence_p(0, 10, 5, 5) == 1.0
    assert bh_qvalues([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.0533, 0.0533, 0.5], 1e-2)
    assert bh_qvalues([0.01], m=10) == pytest.approx([0.1])


def test_lone_untouched_alerts_make_a_rule_noisy_and_verdicts_override() -> None:
    ins = Insights()
    for i in range(6):  # 'flaky' fires alone every time
        ins.observe_incident(incident(f"f{i}", i * 3600, [("db", "Flaky", 0)]))
    for i in range(6):  # 'cpu' always comes with its callers' symptoms
        ins.observe_incident(
            incident(f"c{i}", i * 3600 + 100, [("api", "CPU", 0), ("web", "Latency", 20)])
        )
    rules = {(q.service, q.name): q for q in ins.report().rules}
    assert rules[("db", "Flaky")].noisy
    assert rules[("db", "Flaky")].noise_lower_bound > 0.5
    assert not rules[("api", "CPU")].noisy
    assert ins.report().rules[0].name == "Flaky"  # ranked first
    # responders say the 'cpu' incidents were noise: verdicts win over structure
    for i in range(6):
        ins.observe_feedback(fb(f"c{i}", FeedbackAction.verdict, i * 3600 + 900, verdict="noise"))
    rules = {(q.service, q.name): q for q in ins.report().rules}
    assert rules[("api", "CPU")].noisy
    assert rules[("api", "CPU")].noise_verdict_share == 1.0
    # a verdict is on the incident: every rule in it takes it (noise: all its alerts were)
    assert rules[("web", "Latency")].noisy and rules[("web", "Latency")].verdicts == 6


def test_acted_on_lone_alerts_are_not_noise_and_actions_name_the_fix() -> None:
    ins = Insights()
    for i in range(5):
        ins.observe_incident(incident(f"a{i}", i * 3600, [("db", "DiskFull", 0)]))
        ins.observe_feedback(fb(f"a{i}", FeedbackAction.ack, i * 3600 + 120, user="ann"))
    q = ins.report().rules[0]
    assert not q.noisy and q.action == "keep"
    assert q.auto_resolved_share is None  # acknowledged: nothing resolved by itself


def test_quick_self_resolving_noise_is_told_to_last_longer() -> None:
    ins = Insights()
    for i in range(5):
        ins.observe_incident(incident(f"a{i}", i * 3600, [("db", "Blip", 0)]))
    q = ins.report().rules[0]
    assert q.noisy and q.auto_resolved_share == 1.0 and q.action.startswith("fix")


def test_recurring_incidents_count_and_intervals() -> None:
    ins = Insights()
    for i in range(4):
        ins.observe_incident(
            incident(f"r{i}", i * 7200, [("cart", "OOM", 0), ("web", "Errors", 30)], root="cart")
        )
    ins.observe_incident(incident("x", 99, [("pay", "Latency", 0)]))
    rec = ins.report().recurring
    assert len(rec) == 1
    assert rec[0].root_cause == "cart" and rec[0].alert_names == ["OOM"]
    assert rec[0].count == 4 and rec[0].mean_interval_s == 7200 and rec[0].min_interval_s == 7200


def test_mtta_mttr_per_dimension_with_a_trend() -> None:
    teams = {"cart": "shop"}
    ins = Insights(InsightsSettings(bucket_s=86400), team_of=teams.get)
    ins.observe_incident(incident("d1", 0, [("cart", "OOM", 0)], lasts=600))
    ins.observe_feedback(fb("d1", FeedbackAction.ack, 60))
    ins.observe_incident(incident("d2", 86400, [("cart", "OOM", 0)], lasts=1800))
    ins.observe_feedback(fb("d2", FeedbackAction.ack, 86400 + 300))
    by = {(t.dimension, t.key): t for t in ins.report().timings}
    t = by[("root_cause", "cart")]
    assert t.mttr_s == 1200 and t.mtta_s == 180 and t.acknowledged == 2
    assert t.mttr_change == pytest.approx(2.0)  # 1800 against 600 the day before
    assert [p.mttr_s for p in t.trend] == [600, 1800]
    assert by[("team", "shop")].incidents == 2
    assert by[("severity", "warning")].incidents == 2


def test_feedback_before_its_incident_is_kept_until_it_arrives() -> None:
    ins = Insights()
    ins.observe_feedback(fb("late", FeedbackAction.verdict, 10, verdict="actionable"))
    assert ins.report().unmatched_feedback == 1
    ins.observe_incident(incident("late", 0, [("db", "X", 0)]))
    rep = ins.report()
    assert rep.unmatched_feedback == 0 and rep.rules[0].verdicts == 1


def test_only_resolved_events_and_unmerged_incidents_count() -> None:
    ins = Insights()
    inc = incident("e1", 0, [("db", "X", 0)])
    assert not ins.observe_event(IncidentEvent(type=EventType.opened, incident=inc, at=T0))
    assert ins.observe_event(IncidentEvent(type=EventType.resolved, incident=inc, at=T0))
    merged = incident("e2", 0, [("db", "X", 0)])
    merged.merged_into = "e1"
    assert not ins.observe_incident(merged)
    ins.observe_incident(inc)  # seen again (reopened, resolved anew): replaces, not doubles
    assert ins.report().incidents == 1


def test_memory_stays_bounded_and_folded_history_still_counts() -> None:
    s = InsightsSettings(max_ledger=10, max_rules=5, max_signatures=5, max_baskets=20)
    ins = Insights(s)
    for i in range(200):
        ins.observe_incident(incident(f"i{i}", i * 60, [(f"svc{i % 50}", "X", 0)]))
    assert len(ins._ledger) == 10 and len(ins._baskets) == 20
    rep = ins.report()
    assert rep.incidents == 200
    assert len(rep.rules) <= 5 + 10  # the bounded aggregates plus the ledger's own rules
    assert len(ins._agg.signatures) <= 5


def chain_graph() -> nx.DiGraph:
    # web -> api -> db, web -> auth, and 'cache' that api really calls but the graph misses
    g = nx.DiGraph()
    g.add_edges_from([("web", "api"), ("api", "db"), ("web", "auth"), ("auth", "store")])
    g.add_node("cache")
    return g


def storm_baskets(n: int, seed: int = 1) -> list[Basket]:
    """Faults in random services; callers alert after their dependency; the true graph has
    api -> cache, the given one does not; some background noise."""
    rng = random.Random(seed)
    true = chain_graph()
    true.add_edge("api", "cache")
    nodes = sorted(true)
    out = []
    for i in range(n):
        root = rng.choice(nodes)
        fired = {root: 0.0}
        for k, caller in enumerate(sorted(nx.ancestors(true, root))):
            if rng.random() < 0.8:
                fired[caller] = 10.0 + k
        if rng.random() < 0.2:
            fired.setdefault(rng.choice(nodes), 50.0)
        out.append(Basket(f"b{i}", fired, root))
    return out


def test_a_missing_edge_is_suggested_with_its_direction_and_nothing_else() -> None:
    sugg = suggest_edges(
        storm_baskets(400), chain_graph(), alpha=0.05, min_support=3, max_suggestions=20
    )
    assert [(e.caller, e.callee) for e in sugg] == [("api", "cache")]
    e = sugg[0]
    assert e.leader == "cache" and e.lift > 1 and e.q_value <= 0.05 and e.examples


def test_busy_services_and_chance_co_occurrence_are_not_suggested() -> None:
    rng = random.Random(3)
    g = chain_graph()
    g.add_edge("api", "cache")
    baskets = []
    for i in range(400):  # 'busy' alerts in 70 % of incidents, at random times
        fired = {rng.choice(sorted(g)): float(rng.random())}
        if rng.random() < 0.7:
            fired["busy"] = float(rng.random())
        baskets.append(Basket(f"b{i}", fired, None))
    assert suggest_edges(baskets, g, alpha=0.05, min_support=3, max_suggestions=20) == []


def test_stale_edges_are_those_whose_services_never_alert_together() -> None:
    g = chain_graph()
    baskets = [Basket(f"a{i}", {"auth": 0.0}, "auth") for i in range(30)]
    baskets += [Basket(f"s{i}", {"store": 0.0}, "store") for i in range(30)]
    baskets += [Basket(f"d{i}", {"db": 0.0, "api": 5.0}, "db") for i in range(30)]
    stale = stale_edges(baskets, g, alpha=0.05)
    assert [(e.caller, e.callee) for e in stale] == [("auth", "store")]
    assert stale[0].likely_stale


def test_report_runs_the_topology_analysis_when_given_the_graph() -> None:
    ins = Insights()
    for b in storm_baskets(300):
        alerts = [(s, "Sym", t) for s, t in b.first_fire.items()]
        ins.observe_incident(incident(b.incident_id, 0, alerts, root=b.cause))
    rep = ins.report(chain_graph())
    assert [(e.caller, e.callee) for e in rep.suggested_edges] == [("api", "cache")]
    assert ins.report().suggested_edges == []  # no graph, no topology findings


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="max_ledger"):
        InsightsSettings(max_ledger=0)
    with pytest.raises(ValueError, match="alpha"):
        InsightsSettings(alpha=1.5)


def test_verdict_enum_values_are_folded() -> None:
    ins = Insights()
    inc = incident("v", 0, [("db", "X", 0)])
    inc.verdict = Verdict.actionable.value
    ins.observe_incident(inc)
    assert ins.report().rules[0].noise_verdict_share == 0.0
