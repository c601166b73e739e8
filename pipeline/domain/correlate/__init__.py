"""Topology-aware streaming correlation (see :mod:`pipeline.domain.correlate.correlator`)."""

from pipeline.domain.correlate.correlator import Correlator
from pipeline.domain.correlate.settings import CorrelationSettings
from pipeline.domain.correlate.state import incident_id

__all__ = ["CorrelationSettings", "Correlator", "incident_id"]
