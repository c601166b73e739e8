"""Signed approvals: an ``approve`` or ``deny`` on ``feedback`` counts only when it carries
an HMAC-SHA256 signature made with the approver's own key (when approver keys are
configured). Writing to the feedback topic is then not enough to run a runbook, nor to name
oneself an approver.

The signature covers what the decision means (incident, action, runbook, user) and when it
was made (the timestamp in UTC, to the microsecond), encoded as a JSON array so that no
field can spill into another; it cannot be moved to another incident, runbook or person, and
a copy of one decision replayed is the same decision. A signed approval names its runbook:
"whatever is proposed when it arrives" is not something a person saw.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec

#: shortest approver key accepted (characters)
MIN_KEY_CHARS = 32
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


def approval_payload(
    incident_id: str, action: str, runbook: str | None, user: str, timestamp: datetime
) -> bytes:
    """The bytes an approval's signature covers: a JSON array of a version tag and the
    fields, the timestamp in UTC ISO 8601 with microseconds (a naive one is taken as UTC)."""
    at = timestamp.replace(tzinfo=UTC) if timestamp.tzinfo is None else timestamp.astimezone(UTC)
    ts = at.isoformat(timespec="microseconds")
    return msgspec.json.encode(
        ["stormwatch-approval-v1", incident_id, action, runbook or "", user, ts]
    )


def sign_approval(
    key: str,
    incident_id: str,
    action: str,
    runbook: str | None,
    user: str,
    timestamp: datetime,
) -> str:
    """The hex signature of an approval by ``user`` with ``user``'s key."""
    payload = approval_payload(incident_id, action, runbook, user, timestamp)
    return hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()


def approval_refusal(
    keys: Mapping[str, str],
    incident_id: str,
    action: str,
    runbook: str | None,
    user: str | None,
    timestamp: datetime,
    signature: str | None,
) -> str | None:
    """None when the approval is signed with its user's key, else why it does not count
    (one line, naming no key)."""
    if not user:
        return "an approval must name its user"
    key = keys.get(user)
    if key is None:
        return f"{user} has no approver key"
    if not signature:
        return f"the approval by {user} is not signed (approver keys are configured)"
    if not runbook:
        return f"the approval by {user} names no runbook (a signed approval must name it)"
    if not _SIGNATURE.fullmatch(signature.strip()):
        return f"the signature of the approval by {user} is not 64 hex digits"
    expected = sign_approval(key, incident_id, action, runbook, user, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        return f"the signature of the approval by {user} does not match"
    return None
