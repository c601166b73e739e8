"""The worker's deferred full garbage collection."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pipeline.app.run import defer_full_collections
from pipeline.config import Settings


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
def test_full_collections_wait_for_the_timer_and_start_up_objects_are_frozen() -> None:
    young, middle, _ = gc.get_threshold()
    defer_full_collections()
    assert gc.get_threshold() == (young, middle, 1_000_000_000)
    assert gc.get_freeze_count() > 0


def test_full_gc_interval_defaults_to_a_minute_and_zero_means_python_default() -> None:
    assert Settings().worker.full_gc_interval_s == 60
    assert (
        Settings.model_validate({"worker": {"full_gc_interval_s": 0}}).worker.full_gc_interval_s
        == 0
    )
    with pytest.raises(ValueError, match="full_gc_interval_s"):
        Settings.model_validate({"worker": {"full_gc_interval_s": -1}})
