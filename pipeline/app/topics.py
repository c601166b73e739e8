"""Topic creation at start-up, idempotent, with confluent-kafka's AdminClient."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from pipeline.config import Settings


def repartition_topic(settings: Settings) -> str:
    """The internal topic of normalized alerts keyed by correlation domain."""
    return f"{settings.worker.app_id}-alerts-by-domain"


def merge_topic(settings: Settings) -> str:
    """The internal topic of per-domain incident summaries the merge stage consumes (one
    partition: the merge stage is one writer of ``incidents``)."""
    return f"{settings.worker.app_id}-incidents-by-domain"


def topic_partitions(settings: Settings, name: str) -> int:
    return 1 if name == merge_topic(settings) else settings.topics.partitions


def topic_names(settings: Settings) -> list[str]:
    t = settings.topics
    return [
        t.alerts_raw,
        t.metrics_raw,
        t.dlq,
        t.incidents,
        t.feedback,
        t.remediations,
        repartition_topic(settings),
        merge_topic(settings),
    ]


def ensure_topics(
    settings: Settings,
    timeout_s: float = 30.0,
    names: list[str] | None = None,
    admin: AdminClient | None = None,
) -> list[str]:
    """Create missing topics (``names``, by default every topic of the worker) with the
    configured partitions; return those created."""
    admin = admin or AdminClient(settings.kafka.confluent_config())
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    wanted = [
        NewTopic(
            name,
            num_partitions=topic_partitions(settings, name),
            replication_factor=settings.topics.replication_factor,
        )
        for name in (topic_names(settings) if names is None else names)
        if name not in existing
    ]
    if not wanted:
        return []
    created: list[str] = []
    for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            err = exc.args[0]
            if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise
    return created


def partition_count(settings: Settings, topic: str, timeout_s: float = 30.0) -> int:
    """Partitions ``topic`` really has (an existing topic keeps its count when the setting
    changes), or the configured count when the broker does not list it."""
    admin = AdminClient(settings.kafka.confluent_config())
    meta = admin.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        return settings.topics.partitions
    return len(meta.partitions)
