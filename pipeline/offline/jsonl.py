"""Reading the JSON-lines files the offline commands take."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec


def json_lines(path: Path, error: type[ValueError]) -> Iterator[tuple[int, Any]]:
    """(line number, decoded object) for each non-blank line of ``path``; a missing file or a
    line that is not JSON raises ``error`` with a message naming the file and line."""
    if not path.is_file():
        raise error(f"input file {str(path)!r} does not exist")
    decoder = msgspec.json.Decoder()
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise error(f"{path}:{lineno}: not valid JSON ({exc})") from None
            yield lineno, obj
