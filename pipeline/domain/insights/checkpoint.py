"""The insights state as one versioned document, with the input offsets it covers.

The worker that maintains the insights from the topics writes this document to Redis and
acknowledges its input only by it: on a restart it loads the document and reads on from the
offsets inside, so a message is either in the state or read again, never both, and never
lost. The state is pickled (like the anomaly detectors' checkpoints: River statistics and
dataclasses); the envelope is msgpack with a format version, so a document from an unknown
version is refused with a clear error instead of being misread.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

import msgspec

from pipeline.domain.insights.engine import Insights
from pipeline.domain.insights.settings import InsightsSettings

#: format of the document; bump it when the state's shape changes
VERSION = 1


class CheckpointError(ValueError):
    """The document cannot be read by this version."""


class _Document(msgspec.Struct):
    version: int
    #: "topic:partition" -> the last offset the state covers
    offsets: dict[str, int]
    state: bytes


def dump(insights: Insights, offsets: dict[tuple[str, int], int]) -> bytes:
    """The document of ``insights`` covering input up to ``offsets`` (inclusive)."""
    doc = _Document(
        version=VERSION,
        offsets={f"{t}:{p}": o for (t, p), o in offsets.items()},
        state=pickle.dumps(insights.state(), protocol=pickle.HIGHEST_PROTOCOL),
    )
    return msgspec.msgpack.encode(doc)


def load(
    data: bytes,
    settings: InsightsSettings | None = None,
    team_of: Callable[[str], str | None] | None = None,
) -> tuple[Insights, dict[tuple[str, int], int]]:
    """The insights and the offsets a document covers."""
    try:
        doc = msgspec.msgpack.decode(data, type=_Document)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CheckpointError(f"insights checkpoint does not decode: {exc}") from exc
    if doc.version != VERSION:
        raise CheckpointError(
            f"insights checkpoint has format {doc.version}, this version reads {VERSION}"
        )
    insights = Insights(settings, team_of=team_of)
    try:
        insights.load_state(pickle.loads(doc.state))
    except (pickle.UnpicklingError, ValueError, AttributeError, EOFError) as exc:
        raise CheckpointError(f"insights checkpoint state does not load: {exc}") from exc
    offsets = {}
    for key, offset in doc.offsets.items():
        topic, _, partition = key.rpartition(":")
        offsets[(topic, int(partition))] = offset
    return insights, offsets
