"""Token files are read again when they change: tokens rotate without a restart."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.auth import FileTokens, TokenNames, configured_tokens

NAMES = TokenNames(inline="TOKENS", file="TOKEN_FILE", insecure="INSECURE")
OLD, NEW, INLINE = "a" * 32, "b" * 32, "c" * 32


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))  # a rotation within the same second still shows


def _tokens(path: Path, clock: _Clock, inline: str | None = None) -> FileTokens:
    tokens = FileTokens(inline, path, NAMES, [OLD, *([inline] if inline else [])], 10.0, clock)
    assert tokens.check(OLD)
    return tokens


def test_a_rotated_token_file_is_read_again_after_the_check_interval(tmp_path: Path) -> None:
    path, clock = tmp_path / "tokens", _Clock()
    _write(path, OLD + "\n", 1_000)
    tokens = _tokens(path, clock, inline=INLINE)

    _write(path, NEW + "\n", 2_000)
    clock.t = 9.0
    assert tokens.check(OLD) and not tokens.check(NEW)  # not looked at yet
    clock.t = 10.0
    assert tokens.check(NEW) and not tokens.check(OLD)
    assert tokens.check(INLINE)  # tokens from the environment stay
    assert len(tokens) == 2


def test_a_rotation_that_cannot_be_read_keeps_the_tokens_in_use(tmp_path: Path) -> None:
    path, clock = tmp_path / "tokens", _Clock()
    _write(path, OLD + "\n", 1_000)
    tokens = _tokens(path, clock)

    _write(path, "short\n", 2_000)  # half-written or wrong: not a token
    clock.t = 10.0
    assert tokens.check(OLD)
    path.unlink()  # gone
    clock.t = 20.0
    assert tokens.check(OLD)
    _write(path, NEW + "\n", 3_000)  # fixed
    clock.t = 30.0
    assert tokens.check(NEW) and not tokens.check(OLD)


def test_a_kubernetes_secret_directory_is_followed_through_its_symlink_swap(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    first, second = secret / "..2026_01", secret / "..2026_02"
    first.mkdir()
    second.mkdir()
    _write(first / "token", OLD + "\n", 1_000)
    _write(second / "token", NEW + "\n", 2_000)
    (secret / "..data").symlink_to(first.name)
    (secret / "token").symlink_to("..data/token")
    clock = _Clock()
    tokens = configured_tokens(None, secret, False, NAMES)
    assert isinstance(tokens, FileTokens) and tokens.check(OLD)
    tokens._clock, tokens._looked = clock, 0.0

    (secret / "..data_tmp").symlink_to(second.name)
    os.replace(secret / "..data_tmp", secret / "..data")  # how the kubelet swaps a secret
    clock.t = 10.0
    assert tokens.check(NEW) and not tokens.check(OLD)


def test_tokens_only_from_the_environment_are_a_plain_set() -> None:
    tokens = configured_tokens(INLINE, None, False, NAMES)
    assert tokens is not None and not isinstance(tokens, FileTokens)
    assert tokens.check(INLINE)


def test_a_rotation_that_keeps_size_and_modification_time_is_still_seen(tmp_path: Path) -> None:
    path, clock = tmp_path / "tokens", _Clock()
    _write(path, OLD + "\n", 1_000)
    tokens = _tokens(path, clock)
    _write(path, NEW + "\n", 1_000)  # same length, modification time put back
    clock.t = 10.0
    assert tokens.check(NEW) and not tokens.check(OLD)
