"""Topology-aware streaming correlation (see :mod:`pipeline.domain.correlate.correlator`)."""

from pipeline.domain.correlate.correlator import CorrelationSettings, Correlator, incident_id

__all__ = ["CorrelationSettings", "Correlator", "incident_id"]
