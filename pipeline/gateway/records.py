"""What the gateway writes to Kafka: one canonical alert per message, keyed by its series.

Canonical alerts, not the request body: the worker parses each message once, in the one
format its ingest always reads; a webhook that carries many alerts becomes one message per
alert, so each can be keyed by its own series; and what the gateway checked is exactly what
is stored (the worker's ingest still dead-letters anything on ``alerts.raw`` it cannot parse).

The key is the alert's fingerprint (:func:`pipeline.domain.fingerprint.fingerprint`): the
series identity deduplication keys on, shared by a firing alert, its repeats and the resolve
that ends it. Kafka keeps one key's messages in order within its partition, so a series'
resolve never overtakes its firing; different series spread evenly over the partitions
(keying by service would pour a storm on one service into one partition, and the worker
repartitions by correlation domain anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from pipeline.domain.fingerprint import fingerprint
from pipeline.domain.normalize import FORMAT_HEADER
from pipeline.domain.schemas import Alert, DeadLetter

_encoder = msgspec.json.Encoder()

Headers = list[tuple[str, str | bytes | None]]
#: the endpoint's format a message was received as (the value is always canonical JSON)
RECEIVED_AS = "stormwatch-received-as"
#: the gateway's id of the request a message came in (also in the response)
REQUEST_ID = "stormwatch-request-id"


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes
    headers: Headers


def alert_records(alerts: list[Alert], fmt: str, request_id: str) -> list[Record]:
    headers: Headers = [
        (FORMAT_HEADER, b"canonical"),  # the worker parses it as such, no detection
        (RECEIVED_AS, fmt.encode()),
        (REQUEST_ID, request_id.encode()),
    ]
    return [Record(fingerprint(a).encode(), _encoder.encode(a), headers) for a in alerts]


def dead_letter_record(
    body: bytes,
    http_headers: dict[str, str],
    path: str,
    error: str,
    reason: str,
    request_id: str,
) -> Record:
    """A rejected request for ``alerts.dlq``: the body as received, the dead-letter headers
    (source topic ``http:<path>``, no partition or offset), the request's Content-Type and
    its CloudEvents attributes as Kafka ``ce_`` headers, so a binary-mode event is complete."""
    letter = DeadLetter(
        stage="gateway",
        error=error,
        reason=reason,
        source_topic=f"http:{path}",
        source_partition=-1,
        source_offset=-1,
    )
    headers: Headers = [*letter.headers(), (REQUEST_ID, request_id.encode())]
    for name, value in http_headers.items():
        kafka_name = "content-type" if name == "content-type" else "ce_" + name[3:]
        headers.append((kafka_name, value.encode()))
    return Record(None, body, headers)
