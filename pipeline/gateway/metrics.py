"""The gateway's Prometheus metrics; label values are bounded (endpoint paths, formats,
HTTP status codes, error classes of the parsers)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BYTES = tuple(float(256 * 4**i) for i in range(9))  # 256 B .. 16 MiB


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "stormwatch_gateway_requests_total",
            "HTTP requests answered, by endpoint path ('other' for unknown paths) and status",
            ["endpoint", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "stormwatch_gateway_request_seconds",
            "Time to answer a request, by endpoint (includes waiting for the broker)",
            ["endpoint"],
            buckets=_SECONDS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "stormwatch_gateway_requests_in_flight", "Requests being answered", registry=registry
        )
        self.alerts = Counter(
            "stormwatch_gateway_alerts_total",
            "Alerts accepted: acknowledged by the broker, by the format they arrived in",
            ["format"],
            registry=registry,
        )
        self.payload_bytes = Histogram(
            "stormwatch_gateway_payload_bytes",
            "Size of the request bodies read, by format",
            ["format"],
            buckets=_BYTES,
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "stormwatch_gateway_broker_ack_seconds",
            "From producing a request's alerts until the broker acknowledged all of them",
            buckets=_SECONDS,
            registry=registry,
        )
        self.rejected = Counter(
            "stormwatch_gateway_rejected_total",
            "Requests refused as bad input (4xx after authentication), by format and error",
            ["format", "error"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "stormwatch_gateway_dead_letters_total",
            "Refused request bodies written to the dead-letter topic, by outcome: sent, "
            "failed (the broker did not take it) or too_large (bigger than a message may be)",
            ["outcome"],
            registry=registry,
        )
