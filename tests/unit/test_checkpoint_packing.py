"""How checkpoints are packed for Redis (the round trip against a real Redis is in
tests/integration/test_redis_checkpoints.py)."""

from __future__ import annotations

import os

import pytest

from pipeline.adapters.redis_store import ZLIB_MAGIC, pack_checkpoint, unpack_checkpoint


@pytest.mark.parametrize(
    "data",
    [b"", b"41", b'{"a": 1}' * 10_000, os.urandom(70_000), b"\x80\x05" + b"x" * 100_000],
)
def test_whatever_is_packed_unpacks_to_itself(data: bytes) -> None:
    assert unpack_checkpoint(pack_checkpoint(data, 65536)) == data
    assert pack_checkpoint(data, 0) == data  # off


def test_only_large_compressible_data_is_compressed() -> None:
    big = b'{"service": "checkout", "n": 1}' * 5_000
    assert pack_checkpoint(big, 65536).startswith(ZLIB_MAGIC)
    assert pack_checkpoint(big[:1000], 65536) == big[:1000]
    noise = os.urandom(100_000)
    assert pack_checkpoint(noise, 65536) == noise  # it would not get smaller
