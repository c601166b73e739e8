"""The layering holds: the domain is pure, and the product never imports the benchmarks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _offenders(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = sorted(
            m for m in _imports(path) if any(m == f or m.startswith(f + ".") for f in forbidden)
        )
        if bad:
            out[str(path.relative_to(ROOT))] = bad
    return out


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "pipeline/domain",
            (
                "pipeline.app",
                "pipeline.adapters",
                "pipeline.offline",
                "benchmarks",
                "faust",
                "confluent_kafka",
                "aiokafka",
                "redis",
            ),
        ),
        ("pipeline", ("benchmarks",)),
        ("pipeline/offline", ("pipeline.app", "faust", "confluent_kafka")),
        # the gateway is a light process of its own: no stream processor, no Redis
        ("pipeline/gateway", ("faust", "aiokafka", "redis", "pipeline.app.worker")),
    ],
)
def test_layers_import_only_what_they_may(package: str, forbidden: tuple[str, ...]) -> None:
    assert _offenders(package, forbidden) == {}
