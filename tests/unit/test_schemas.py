from __future__ import annotations

from pathlib import Path

from pipeline.schema_files import render_schemas


def test_schema_files_match_the_code(root: Path) -> None:
    """Fails when the wire types changed without `make schemas`."""
    for name, text in render_schemas().items():
        path = root / "schemas" / name
        assert path.is_file(), f"{name} missing: run 'make schemas'"
        assert path.read_text() == text, f"{name} is stale: run 'make schemas'"
