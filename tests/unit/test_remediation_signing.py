"""Signed approvals and the approvers' key files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
        ({"runbook": None}, "does not match"),  # widened to whatever is proposed
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


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("alice short", "32 characters"),
        ("alice " + "a" * 20 + " " + "a" * 20, "one word"),
        ("$(id) " + "a" * 40, "is not a user name"),
        ("# nothing\n", "hold no key"),
    ],
)
def test_bad_key_files_get_one_line_naming_the_line(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(content)
    with pytest.raises(ApproverKeyError, match=why) as err:
        load_approver_keys(path)
    assert "\n" not in str(err.value) and "a" * 20 not in str(err.value)


def test_missing_keys_say_which_setting_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ApproverKeyError, match="STORMWATCH_REMEDIATION__APPROVER_KEYS"):
        load_approver_keys(tmp_path / "nope")
