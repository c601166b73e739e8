"""The live insights' metrics hold at most their top-k series, and a refresh drops the old."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from pipeline.app.insights import TOP_KEYS, TOP_RULES, InsightsMetrics
from pipeline.domain.insights import Insights
from tests.unit.test_insights import incident


def _series(registry: CollectorRegistry, name: str) -> list[dict[str, str]]:
    return [s.labels for m in registry.collect() for s in m.samples if s.name == name and s.labels]


def test_metrics_keep_the_top_k_and_forget_what_left_it() -> None:
    registry = CollectorRegistry()
    metrics = InsightsMetrics(registry)
    ins = Insights()
    for i in range(300):  # 100 services, 3 lone alerts each: 100 noisy rules
        ins.observe_incident(incident(f"i{i}", i * 600, [(f"svc{i % 100}", "Blip", 0)]))
    metrics.update(ins.report(), 1.0)
    assert len(_series(registry, "stormwatch_insights_rule_noise_share")) == TOP_RULES
    assert len(_series(registry, "stormwatch_insights_mttr_seconds")) <= 4 * TOP_KEYS
    assert _series(registry, "stormwatch_insights_noisy_rules") == []  # no labels
    assert registry.get_sample_value("stormwatch_insights_noisy_rules") == 100
    assert registry.get_sample_value("stormwatch_insights_incidents") == 300

    other = Insights()
    other.observe_incident(incident("x", 0, [("db", "Down", 0), ("api", "Errors", 10)]))
    metrics.update(other.report(), 2.0)
    rules = _series(registry, "stormwatch_insights_rule_noise_share")
    assert sorted(r["service"] for r in rules) == ["api", "db"]
    assert registry.get_sample_value("stormwatch_insights_last_refresh_timestamp_seconds") == 2.0
