"""Signed approvals and the approvers' key files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline.auth import ApproverKeyError, load_approver_keys
from pipeline.domain.remediation.signing import approval_refusal, sign_approval

KEYS = {"alice": "a" * 40, "bob": "b" * 40}
AT = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=UTC)


def _signed(**change: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "incident_id": "inc-1",
        "action": "approve",
        "runbook": "restart",
        "user": "alice",
        "timestamp": AT,
    }
    sig = sign_approval(KEYS["alice"], **fields)  # type: ignore[arg-type]
    return {**fields, "signature": sig, **change}


def test_an_approval_signed_with_its_users_key_counts() -> None:
    assert approval_refusal(KEYS, **_signed()) is None  # type: ignore[arg-type]
    upper = _signed()
    upper["signature"] = str(upper["signature"]).upper()
    assert approval_refusal(KEYS, **upper) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"incident_id": "inc-2"}, "does not match"),  # moved to another incident
        ({"action": "deny"}, "does not match"),  # turned into the other decision
        ({"runbook": "scale-out"}, "does not match"),  # another runbook
        ({"runbook": None}, "names no runbook"),  # widened to whatever is proposed
        ({"timestamp": AT + timedelta(microseconds=1)}, "does not match"),
        ({"user": "bob"}, "does not match"),  # alice's signature under bob's name
        ({"user": "mallory"}, "mallory has no approver key"),
        ({"user": None}, "must name its user"),
        ({"signature": None}, "not signed"),
        ({"signature": ""}, "not signed"),
    ],
)
def test_an_approval_that_is_not_its_users_does_not_count(
    change: dict[str, object], why: str
) -> None:
    refusal = approval_refusal(KEYS, **_signed(**change))  # type: ignore[arg-type]
    assert refusal is not None and why in refusal
    assert "a" * 40 not in refusal and "b" * 40 not in refusal


def test_keys_from_a_secret_directory_and_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.mkdir()
    (secret / "alice").write_text("a" * 40 + "\n")
    (secret / "..data").mkdir()  # the kubelet's bookkeeping is skipped
    assert load_approver_keys(secret) == {"alice": "a" * 40}
    listing = tmp_path / "keys.txt"
    listing.write_text("# approvers\nalice " + "a" * 40 + "\n\nbob.smith@example " + "b" * 40)
    assert load_approver_keys(listing) == {"alice": "a" * 40, "bob.smith@example": "b" * 40}


KEY = "0123456789abcdef" * 4  # what a mistyped line might hold


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("alice short", "32 characters"),
        ("alice " + "a" * 20 + " " + "a" * 20, "one word"),
        ("$(id) " + KEY, "does not start with a user name"),
        (KEY, "expected a user name, a space and a key"),  # the key alone
        (KEY + " alice", "expected a user name, a space and a key"),  # reversed
        ("alice:" + KEY, "does not start with a user name"),
        ("alice\t" + KEY, None),  # a tab separates too
        ("# nothing\n", "hold no key"),
    ],
)
def test_bad_key_files_get_one_line_naming_the_line_and_never_the_key(
    tmp_path: Path, content: str, why: str | None
) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(content)
    if why is None:
        assert load_approver_keys(path) == {"alice": KEY}
        return
    with pytest.raises(ApproverKeyError, match=why) as err:
        load_approver_keys(path)
    text = str(err.value)
    assert "\n" not in text and "a" * 20 not in text and KEY[:16] not in text


def test_a_signature_that_is_not_hex_is_refused_not_a_crash() -> None:
    for bad in ("é" * 64, "z" * 64, "ab"):
        refusal = approval_refusal(KEYS, **_signed(signature=bad))  # type: ignore[arg-type]
        assert refusal is not None and "64 hex digits" in refusal


def test_a_field_cannot_spill_into_the_next() -> None:
    """Newline-joined fields would let (incident 'X\\ndeny', approve, R) verify as
    (incident X, deny, runbook 'approve\\nR'); the JSON array cannot be read two ways."""
    sig = sign_approval(KEYS["alice"], "X\ndeny", "approve", "R", "alice", AT)
    refusal = approval_refusal(KEYS, "X", "deny", "approve\nR", "alice", AT, sig)
    assert refusal is not None and "does not match" in refusal


def test_the_timestamp_is_signed_in_utc_whatever_zone_the_signer_used() -> None:
    here = AT.astimezone(timezone(timedelta(hours=2)))
    sig = sign_approval(KEYS["alice"], "inc-1", "approve", "restart", "alice", here)
    assert approval_refusal(KEYS, "inc-1", "approve", "restart", "alice", AT, sig) is None


def test_missing_keys_say_which_setting_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ApproverKeyError, match="STORMWATCH_REMEDIATION__APPROVER_KEYS"):
        load_approver_keys(tmp_path / "nope")
