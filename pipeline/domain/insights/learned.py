"""Learned-edges mode: the suggested missing edges the correlator may use as learned calls.

Off by default (``insights.learned_edges``). The suggestions at or above a confidence
(``1 - q``, :mod:`.topology`) become ``(caller, callee, confidence)`` relations, which the
correlator treats like calls learned from alert labels
(:meth:`pipeline.domain.correlate.Correlator.learn_relations`) and names in explanations as
learned from the incident history. A call the suggestions no longer hold at that confidence
is forgotten again (:meth:`pipeline.domain.correlate.Correlator.sync_relations`).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from pipeline.domain.insights.topology import EdgeSuggestion

Relation = tuple[str, str, float]  # (caller, callee, confidence)

_decoder = msgspec.json.Decoder(list[tuple[str, str, float]])


def relations(suggestions: Iterable[EdgeSuggestion], min_confidence: float) -> list[Relation]:
    """The suggested edges at or above ``min_confidence``, most confident first."""
    chosen = [(e.caller, e.callee, e.confidence) for e in suggestions]
    return sorted((r for r in chosen if r[2] >= min_confidence), key=lambda r: (-r[2], r[0], r[1]))


def encode(rels: list[Relation]) -> bytes:
    return msgspec.json.encode(rels)


def decode(data: bytes) -> list[Relation]:
    """:func:`encode`'s output back (a ``msgspec.DecodeError`` or ``ValidationError`` when it
    is not)."""
    return _decoder.decode(data)
