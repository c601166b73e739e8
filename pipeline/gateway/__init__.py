"""The HTTP ingest gateway (``stormwatch ingest``): alert webhooks in, ``alerts.raw`` out.

Every request is normalized into canonical alerts (bad input answered with a 4xx and the
reason, and dead-lettered), produced one message per alert keyed by its series fingerprint
with an idempotent producer, and answered 202 only once the broker acknowledged all of them
(503 with ``Retry-After`` otherwise). See docs/gateway.md.
"""
