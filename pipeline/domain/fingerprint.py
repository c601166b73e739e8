"""Alert fingerprints: what makes two alert events "the same alert"."""

from __future__ import annotations

import hashlib

from pipeline.domain.schemas import Alert

# Labels that change between notifications of one alert and must not split its identity.
VOLATILE_LABELS = frozenset({"value", "timestamp", "startsAt", "endsAt"})


def fingerprint(alert: Alert) -> str:
    """Stable id of the alert series (source, service, name, identifying labels).

    A firing event and the resolved event that ends it share a fingerprint; repeated
    notifications of a still-firing alert share it too, which is what deduplication keys on.
    """
    parts = [alert.source, alert.service, alert.name]
    parts.extend(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k not in VOLATILE_LABELS)
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()
