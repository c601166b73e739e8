"""The cross-domain merge stage (issue 14): one connected topology correlated across workers.

A :class:`~pipeline.domain.domains.DomainMap` splits a connected topology into ``k``
correlation domains, each correlated by its own ``AlertPipeline`` over the whole topology.
The parts, each pure (no Kafka, Faust or Redis):

* :mod:`.summary`: :class:`Summary`, what a per-domain worker sends per changed incident,
  and :class:`SummaryDeriver`, which derives them from its pipeline's step output;
* :mod:`.merger`: :class:`Merger`, summaries in, :class:`MergeOutput` out (events for
  ``incidents``, controls for the domains), eviction (``advance``), checkpoints, feedback
  fan-out;
* :mod:`.links`: which indexed incidents a newly alerting service relates to;
* :mod:`.timing`: when a group could still take an alert;
* :mod:`.state`: records, groups, union-find and the checkpoint codec;
* :mod:`.ranking`: groups' root causes over the union evidence;
* :mod:`.incidents`, :mod:`.explain`: the group's published events and their texts;
* :mod:`.feedback`: feedback on a group fanned out to its members;
* :mod:`.controls`: :class:`Control` and :func:`apply_control` (the domain's side).

The offline driver is :mod:`pipeline.offline.partitioned`.
"""

from pipeline.domain.merge.controls import Control, ControlKind, apply_control
from pipeline.domain.merge.merger import MergeOutput, Merger
from pipeline.domain.merge.summary import Summary, SummaryDeriver

__all__ = [
    "Control",
    "ControlKind",
    "MergeOutput",
    "Merger",
    "Summary",
    "SummaryDeriver",
    "apply_control",
]
