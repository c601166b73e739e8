"""The Faust settings of a worker (the Faust ceilings of ``make bench`` use them too)."""

from __future__ import annotations

from typing import Any

import faust

from pipeline.app.transport import use_tuned_transport
from pipeline.config import Settings


def faust_settings(s: Settings) -> dict[str, Any]:
    """The Faust app settings of a worker."""
    creds: Any = None
    if s.kafka.sasl_mechanism:
        pw = s.kafka.sasl_password.get_secret_value() if s.kafka.sasl_password else ""
        creds = faust.SASLCredentials(
            username=s.kafka.sasl_username or "",
            password=pw,
            mechanism=s.kafka.sasl_mechanism,
            ssl_context=None,
        )
    scheme = use_tuned_transport(s.worker.fetch_max_wait_ms)
    s.worker.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "broker": s.kafka.faust_broker(scheme),
        "datadir": str(s.worker.data_dir / "{conf.name}"),
        "broker_credentials": creds,
        "web_host": s.worker.web_host,
        "web_port": s.worker.web_port,
        "web_enabled": True,
        # Faust's table-key router and table reads are for apps with Faust tables (this one
        # has none): off, so the web port serves only stormwatch's own pages
        "web_router_enabled": False,
        "web_tables_enabled": False,
        "store": "memory://",
        "topic_partitions": s.topics.partitions,
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "broker_rebalance_timeout": s.worker.rebalance_timeout_s,
        "broker_session_timeout": s.worker.session_timeout_s,
        "broker_heartbeat_interval": min(3.0, s.worker.session_timeout_s / 4),
        "broker_max_poll_interval": max(s.worker.rebalance_timeout_s, 60.0),
        "consumer_auto_offset_reset": "earliest",
        "consumer_max_fetch_size": s.worker.fetch_max_bytes,
        # Correlate acknowledges a message only once its state is in Redis (group commit),
        # so Faust's wait for "all messages acked" on rebalance and stop would wait for
        # the commit timer; hand_over/commit_on_shutdown write that state themselves, and
        # the checkpointed offset makes re-consumption of unacked messages exact.
        "stream_wait_empty": False,
        # records fetched but not yet taken: a raw partition held for event-time alignment
        # still delivers these, so they bound how far it runs ahead (with 4096 a sparse
        # storm's partitions ran ~30,000 s of event time apart)
        "stream_buffer_maxsize": max(1024, s.worker.batch_size * 2),
        "broker_commit_every": max(1000, s.worker.batch_size),
        "broker_commit_interval": 1.0,
        "producer_linger": 0.002,
        "producer_acks": -1,
        "value_serializer": "raw",
        "key_serializer": "raw",
    }
