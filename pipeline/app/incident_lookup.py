"""An incident as the store holds it: its record (a bounded view) with every member alert id
recorded (``stormwatch incident show``, the worker's ``/incidents/<id>`` page)."""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.ports import StateStore


def incident_document(store: StateStore, incident_id: str) -> dict[str, Any] | None:
    """The record of ``incident_id`` plus ``members`` (its alert ids, then those of incidents
    merged into it; the newest ``redis.max_members`` per incident); None if unknown."""
    record = store.get_incident(incident_id)
    if record is None:
        return None
    doc: dict[str, Any] = msgspec.json.decode(record)
    members = store.incident_members(incident_id)
    doc["members"] = members
    doc["members_listed"] = len(members)
    return doc
