"""Alert scoring: novelty, actionability, learning from verdicts, priority and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.domain.learning import actionability_label
from pipeline.domain.schemas import (
    Alert,
    AlertRef,
    AlertStatus,
    Feedback,
    FeedbackAction,
    Incident,
    IncidentStatus,
    Severity,
    Verdict,
)
from pipeline.domain.scoring import LRU, AlertScore, AlertScorer, PairMemory, ScoringSettings

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _alert(i: int, service: str = "api", name: str = "HighLatency", minutes: float = 1.0) -> Alert:
    return Alert(
        id=f"a{i}",
        source="prometheus",
        service=service,
        name=name,
        severity=Severity.warning,
        status=AlertStatus.firing,
        timestamp=T0 + timedelta(minutes=i * minutes),
    )


def _incident(alerts: list[Alert], iid: str = "inc-1") -> Incident:
    refs = [
        AlertRef(
            id=a.id,
            service=a.service,
            name=a.name,
            severity=a.severity,
            status=a.status,
            timestamp=a.timestamp,
        )
        for a in alerts
    ]
    return Incident(
        id=iid,
        status=IncidentStatus.resolved,
        opened_at=alerts[0].timestamp,
        updated_at=alerts[-1].timestamp,
        alert_ids=[a.id for a in alerts],
        alerts=refs,
        services=sorted({a.service for a in alerts}),
    )


def _verdict(v: Verdict, iid: str = "inc-1") -> Feedback:
    return Feedback(
        incident_id=iid, action=FeedbackAction.verdict, verdict=v, timestamp=T0, user="alice"
    )


def test_scores_in_range_and_repeated_alert_less_novel() -> None:
    scorer = AlertScorer()
    first = scorer.score(_alert(0))
    for i in range(1, 200):
        last = scorer.score(_alert(i))
    assert 0.0 <= last.novelty <= 1.0 and 0.0 <= last.actionability <= 1.0
    assert last.novelty < first.novelty
    fresh = scorer.score(_alert(1000, service="db", name="DiskFull"))
    assert fresh.novelty > last.novelty


def test_noise_verdicts_stop_paging_and_are_audited() -> None:
    scorer = AlertScorer()
    noisy = [_alert(i, service="batch", name="CPUSaturation") for i in range(3)]
    before = scorer.score(noisy[0]).actionability
    assert before > 0.5
    updates = []
    for k in range(5):
        updates += scorer.learn(_incident(noisy, f"inc-{k}"), _verdict(Verdict.noise, f"inc-{k}"))
    assert scorer.version == 5
    u = updates[0]
    assert (u.incident_id, u.feedback, u.model) == ("inc-0", "verdict:noise", "actionability")
    assert (u.version_before, u.version_after, u.label, u.user) == (0, 1, "page=false", "alice")
    assert u.to_dict()["feedback_at"].startswith("2024-01-01")
    after = scorer.score(_alert(10, service="batch", name="CPUSaturation"))
    assert after.actionability < 0.5
    inc = _incident(noisy)
    scorer.annotate(inc, [after])
    assert inc.page is False and 0.0 <= inc.priority <= 1.0
    # other alerts still page
    other = scorer.score(_alert(11, service="payments", name="ErrorRateHigh"))
    inc2 = _incident([_alert(11, service="payments", name="ErrorRateHigh")], "inc-x")
    scorer.annotate(inc2, [other])
    assert inc2.page is True


def test_annotate_never_sets_page_true() -> None:
    scorer = AlertScorer()
    inc = _incident([_alert(0)])
    inc.page = False
    scorer.annotate(inc, [AlertScore(novelty=1.0, actionability=1.0)])
    assert inc.page is False and inc.priority > 0.5


def test_verdicts_without_label_do_not_update() -> None:
    scorer = AlertScorer()
    inc = _incident([_alert(0)])
    assert scorer.learn(inc, _verdict(Verdict.duplicate)) == []
    ack = Feedback(incident_id="inc-1", action=FeedbackAction.ack, timestamp=T0)
    assert scorer.learn(inc, ack) == []
    assert scorer.version == 0
    rc = Feedback(incident_id="i", action=FeedbackAction.root_cause, root_cause="db", timestamp=T0)
    assert actionability_label(rc) is True
    assert actionability_label(_verdict(Verdict.flapping)) is False


def test_snapshot_restore_scores_identically() -> None:
    scorer = AlertScorer(ScoringSettings(page_threshold=0.4))
    alerts = [_alert(i, service=f"s{i % 3}", name=f"n{i % 4}") for i in range(300)]
    for a in alerts[:150]:
        scorer.score(a)
    scorer.learn(_incident(alerts[:5]), _verdict(Verdict.noise))
    restored = AlertScorer.restore(scorer.snapshot(), ScoringSettings(page_threshold=0.4))
    assert restored.version == scorer.version
    for a in alerts[150:]:
        assert scorer.score(a) == restored.score(a)


def test_pair_memory_is_bounded_and_keeps_recent_pairs() -> None:
    pairs = PairMemory(maxsize=10)
    for i in range(100):
        pairs.current.add((f"a{i}", "b"))
        pairs.rotate_if_full()
        assert len(pairs) <= 10
        assert all((f"a{j}", "b") in pairs for j in range(max(0, i - 4), i + 1))
    assert ("a0", "b") not in pairs


def test_cooccurrence_novelty_falls_once_kinds_have_fired_together() -> None:
    scorer = AlertScorer()
    kinds = [("api", "Latency"), ("db", "Slow"), ("cache", "Miss")]
    first = [scorer._unseen_share(f"{s}/{n}", 0.0) for s, n in kinds]
    for i in range(6):
        s, n = kinds[i % 3]
        scorer.score(_alert(i, service=s, name=n, minutes=0.1))
    later = scorer._unseen_share("api/Latency", (T0 + timedelta(minutes=1)).timestamp())
    assert first == [0.0, 0.0, 0.0] and later == 0.0
    assert scorer._unseen_share("web/Errors", (T0 + timedelta(minutes=1)).timestamp()) == 1.0


def test_restore_migrates_pair_counts_of_older_snapshots() -> None:
    scorer = AlertScorer()
    for i in range(20):
        scorer.score(_alert(i, service=f"s{i % 4}", name="n"))
    old = LRU[tuple[str, str], float](1000)
    for pair in scorer._pairs.current | scorer._pairs.previous:
        old[pair] = 1.0
    scorer._pairs = old  # type: ignore[assignment]
    restored = AlertScorer.restore(scorer.snapshot())
    assert isinstance(restored._pairs, PairMemory)
    assert all(pair in restored._pairs for pair in old)


def test_recent_kinds_keep_their_pair_across_generations() -> None:
    # X and B fire, then many other kinds fill the pair memory: while X and B are both
    # recent, their pair is remembered from both sides (the review's max_pairs=20 case)
    scorer = AlertScorer(ScoringSettings(max_pairs=20))
    seq = [("x", "X"), ("b", "B")] + [(f"k{i}", "K") for i in range(12)] + [("b", "B")] * 3
    for i, (service, name) in enumerate(seq):
        scorer.score(_alert(i, service=service, name=name, minutes=0.1))
    t = (T0 + timedelta(minutes=2)).timestamp()
    assert ("b/B", "x/X") in scorer._pairs
    assert scorer._unseen_share("x/X", t) == scorer._unseen_share("b/B", t) == 0.0


def test_late_alerts_do_not_count_kinds_outside_the_window() -> None:
    scorer = AlertScorer(ScoringSettings(cooccurrence_window_s=60))
    scorer.score(_alert(0, service="a", name="A", minutes=10))  # t = 0 min
    scorer.score(_alert(3, service="b", name="B", minutes=10))  # t = 30 min
    scorer.score(_alert(1, service="c", name="C", minutes=10))  # late: t = 10 min
    t = (T0 + timedelta(minutes=30, seconds=30)).timestamp()
    # only b/B is inside the window: a new kind has never been seen with it
    assert scorer._unseen_share("d/D", t) == 1.0
    assert scorer._unseen_share("b/B", t) == 0.0


def test_restore_applies_the_configured_bounds() -> None:
    scorer = AlertScorer()
    for i in range(50):
        scorer.score(_alert(i, service=f"s{i}", name="n"))
    restored = AlertScorer.restore(scorer.snapshot(), ScoringSettings(max_kinds=10, max_pairs=8))
    assert len(restored._kinds) == 10 and restored._kinds.maxsize == 10
    assert restored._pairs.maxsize == 8


def test_decision_time_views_are_forgotten_a_ttl_after_the_last_decision() -> None:
    scorer = AlertScorer(ScoringSettings(decision_ttl_s=3600))
    old = _incident([_alert(0)], iid="inc-old")
    scorer.hold_until(old)
    assert "inc-old" in scorer._decisions
    later = _incident([_alert(120)], iid="inc-new")  # two hours later
    scorer.hold_until(later)
    assert "inc-old" not in scorer._decisions and "inc-new" in scorer._decisions
    # a verdict on the forgotten incident still teaches, from the incident as it is
    updates = scorer.learn(old, _verdict(Verdict.noise, iid="inc-old"))
    assert updates
