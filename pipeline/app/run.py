"""Start a worker process: check config and services, create topics, run Faust."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable

import faust
import redis
import structlog
from confluent_kafka import KafkaException

from pipeline.adapters.redis_store import RedisStore
from pipeline.app.domain_map import resolve_domain_map
from pipeline.app.runbooks import runbook_index
from pipeline.app.topics import ensure_topics, partition_count, repartition_topic
from pipeline.app.web_auth import WebAuth
from pipeline.app.worker import Worker
from pipeline.auth import TokenError
from pipeline.config import Settings
from pipeline.domain.remediation.runbook import RunbookError
from pipeline.domain.topology import Topology, TopologyError


class _QuietWorker(faust.Worker):
    """Faust's worker leaves the root logger at DEBUG (only its handler filters), so every
    library ``log.debug`` call on the hot path built a record: keep the root at the level."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        if level:
            logger.setLevel(level)


def defer_full_collections() -> None:
    """Leave full collections to the worker's ``full_gc`` timer.

    A full collection traverses every tracked object (models, incident states, the
    topology): about 0.1 s with the loop stopped, and CPython triggered one every second or
    two under load, finding no garbage, which set the worker's tail latency. Young
    generations still collect as usual; what start-up built is frozen out of the scans.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 1_000_000_000)


def run_worker(settings: Settings, fail: Callable[[str], None]) -> None:
    """Run until stopped; user-facing problems go to ``fail`` as one line."""
    try:
        web_auth = WebAuth.from_settings(settings.worker)
    except TokenError as exc:
        fail(str(exc))
        return
    if web_auth.mode == "insecure":
        structlog.get_logger("stormwatch.web").warning(
            "web writes are NOT authenticated (STORMWATCH_WORKER__WEB_INSECURE): development only"
        )
    try:
        topology = Topology.load(settings.topology)
    except TopologyError as exc:
        fail(f"{exc} (set STORMWATCH_TOPOLOGY or --topology)")
        return
    try:
        runbook_index(settings, topology)
    except RunbookError as exc:
        fail(f"{exc} (fix the runbook or STORMWATCH_REMEDIATION__RUNBOOKS)")
        return
    store = RedisStore.from_url(
        settings.redis.url.get_secret_value(), **settings.redis.store_options()
    )
    try:
        store.ping()
    except redis.RedisError as exc:
        fail(f"cannot reach Redis ({exc}); check STORMWATCH_REDIS__URL")
        return
    try:
        ensure_topics(settings, timeout_s=15)
        route_partitions = partition_count(settings, repartition_topic(settings), timeout_s=15)
    except KafkaException as exc:
        fail(
            f"cannot create topics on {settings.kafka.bootstrap_servers} ({exc}); "
            "check STORMWATCH_KAFKA__BOOTSTRAP_SERVERS"
        )
        return
    if settings.worker.loop == "uvloop":
        import uvloop

        uvloop.install()
    domain_map = resolve_domain_map(settings, topology, store)
    worker = Worker(
        settings,
        topology=topology,
        store=store,
        route_partitions=route_partitions,
        domain_map=domain_map,
        web_auth=web_auth,
    )
    if settings.worker.full_gc_interval_s:
        defer_full_collections()
    _QuietWorker(
        worker.app,
        loglevel=settings.log_level.upper(),
        quiet=True,
        redirect_stdouts=False,
    ).execute_from_commandline()
    logging.shutdown()
