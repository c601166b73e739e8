"""Long-term insights from incidents and feedback: alert quality per rule, recurring
incidents, MTTA/MTTR with trends, and where the service graph looks wrong (pure domain code,
fed one message at a time, bounded memory). See docs/insights.md."""

from pipeline.domain.insights.engine import Insights, InsightsReport
from pipeline.domain.insights.settings import InsightsSettings

__all__ = ["Insights", "InsightsReport", "InsightsSettings"]
