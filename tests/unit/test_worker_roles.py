"""A worker process writes only the model checkpoints of the roles it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.adapters.memory_store import MemoryStore
from pipeline.app.models import DETECTORS_CHECKPOINT, MODELS_CHECKPOINT, RESPONDERS_CHECKPOINT
from pipeline.app.worker import Worker
from pipeline.config import load_settings
from pipeline.domain.topology import Topology

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (
            "ingest,correlate,feedback,metrics",
            {MODELS_CHECKPOINT, DETECTORS_CHECKPOINT, RESPONDERS_CHECKPOINT},
        ),
        ("ingest,feedback", set()),
        ("correlate", {MODELS_CHECKPOINT, RESPONDERS_CHECKPOINT}),
        ("metrics", {DETECTORS_CHECKPOINT}),
    ],
)
def test_model_checkpoints_follow_roles(tmp_path: Path, roles: str, expected: set[str]) -> None:
    settings = load_settings(worker={"roles": roles, "data_dir": str(tmp_path)})
    store: Any = MemoryStore()
    topology = Topology.load(ROOT / "topologies" / "online-boutique.yaml")
    worker = Worker(settings, topology=topology, store=store)
    assert set(worker.models.checkpoints()) == expected
