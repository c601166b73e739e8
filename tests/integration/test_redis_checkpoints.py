"""Checkpoints in a real Redis: large ones stored compressed, read back as written; data
written before compression existed still reads."""

from __future__ import annotations

import os
import uuid

import msgspec
import redis

from pipeline.adapters.redis_store import ZLIB_MAGIC, RedisStore
from pipeline.app.localstack import Service


def _store(redis_service: Service, compress_above: int = 65536) -> RedisStore:
    client = redis.Redis.from_url(redis_service.url)
    return RedisStore(client, prefix=f"t{uuid.uuid4().hex[:8]}:", compress_above=compress_above)


def test_a_large_checkpoint_is_stored_compressed_and_read_back_as_written(
    redis_service: Service,
) -> None:
    store = _store(redis_service)
    state = msgspec.msgpack.encode([{"service": f"svc-{i % 50}", "n": i} for i in range(20_000)])
    store.commit(
        dedup_states={}, checkpoints={"pipeline:0": state, "offset:0": b"41"}, incidents={}
    )
    raw = store.r.hget(f"{store.prefix}ckpt:pipeline:0", "data")
    assert isinstance(raw, bytes) and raw.startswith(ZLIB_MAGIC) and len(raw) < len(state) / 3
    assert store.load_checkpoint("pipeline:0") == state
    assert store.r.hget(f"{store.prefix}ckpt:offset:0", "data") == b"41"  # small: as is
    assert store.load_checkpoint("offset:0") == b"41"


def test_incompressible_data_and_data_from_before_compression_read_as_they_are(
    redis_service: Service,
) -> None:
    store = _store(redis_service, compress_above=16)
    noise = os.urandom(100_000)  # compressing it would not make it smaller
    store.save_checkpoint("noise", noise)
    assert store.r.hget(f"{store.prefix}ckpt:noise", "data") == noise
    assert store.load_checkpoint("noise") == noise
    old = msgspec.msgpack.encode({"written": "by an older version"})
    store.r.hset(f"{store.prefix}ckpt:old", mapping={"data": old, "saved_at": 0})
    assert store.load_checkpoint("old") == old


def test_a_checkpoint_written_under_a_lease_is_compressed_too(redis_service: Service) -> None:
    store = _store(redis_service)
    lease = f"{store.prefix}lease:x"
    store.r.set(lease, "me")
    state = b"{" + b'"k": "v", ' * 20_000 + b"}"
    assert store.save_checkpoint_held("insights", state, lease, "me")
    raw = store.r.hget(f"{store.prefix}ckpt:insights", "data")
    assert isinstance(raw, bytes) and raw.startswith(ZLIB_MAGIC)
    assert store.load_checkpoint("insights") == state
