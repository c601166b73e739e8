"""The correlation domain map this deployment uses, shared by every worker through Redis.

With ``worker.domains`` 1 (the default) nothing is split and routing is as it always was
(the CRC-32 of each weakly connected component). Otherwise the map is stored in Redis
(checkpoint ``domains``) and carried over to a changed topology with a sticky update, so a
topology edit never moves a known service to another domain (recomputing from scratch after
a 1 % edge change moves most of them). Every worker computes the same map from the same
inputs, so workers starting together agree without coordination.
"""

from __future__ import annotations

import structlog

from pipeline.adapters.redis_store import RedisStore
from pipeline.config import Settings
from pipeline.domain.domains import DomainMap, build_domain_map, choose_k, sticky_update
from pipeline.domain.topology import Topology

log = structlog.get_logger("stormwatch.worker")

DOMAIN_MAP_CHECKPOINT = "domains"


def resolve_domain_map(
    settings: Settings, topology: Topology, store: RedisStore
) -> DomainMap | None:
    """The stored map carried over to ``topology``, a new one, or None when not split."""
    k = choose_k(topology, settings.worker.domains)
    if k <= 1:
        return None
    stored = store.load_checkpoint(DOMAIN_MAP_CHECKPOINT)
    old = DomainMap.from_json(stored) if stored else None
    if old is not None and old.k == k and old.topology == topology.name:
        new = sticky_update(old, topology)
        if new.domains == old.domains and new.partitions == old.partitions:
            return old
    else:
        new = build_domain_map(topology, k, version=old.version + 1 if old else 1)
    store.save_checkpoint(DOMAIN_MAP_CHECKPOINT, new.to_json())
    log.info("domain map", version=new.version, k=new.k, domains=len(new.partitions))
    return new
