"""JSON Schema files generated from the wire types in :mod:`pipeline.domain.schemas`."""

from __future__ import annotations

import json

import msgspec

from pipeline.domain.schemas import WIRE_TYPES


def render_schemas() -> dict[str, str]:
    """File name -> JSON Schema text, one per wire type."""
    out: dict[str, str] = {}
    for name, typ in WIRE_TYPES.items():
        schema = msgspec.json.schema(typ)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://stormwatch.dev/schemas/{name}.json"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out
