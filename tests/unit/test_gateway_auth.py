"""Gateway tokens: loading from the environment, files and directories; the check; the CLI's
one-line refusals to start without tokens or with a contradictory configuration."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.auth import TokenError, TokenSet, bearer_token, load_tokens, parse_tokens
from pipeline.cli import app
from pipeline.config import load_settings
from pipeline.gateway.run import GATEWAY_TOKENS, resolve_tokens

T1 = "a" * 16 + "1"
T2 = "Zm9vYmFyYmF6cXV4MTIzNA=="


def test_tokens_from_env_file_and_directory(tmp_path: Path) -> None:
    file = tmp_path / "tokens"
    file.write_text(f"# gateway tokens\n{T1}\n\n  {T2}  \n")
    assert load_tokens(None, file, GATEWAY_TOKENS) == [T1, T2]
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "alertmanager").write_text(T1 + "\n")
    (secret / "grafana").write_text(T2)
    (secret / "..data").mkdir()  # a mounted Kubernetes secret's bookkeeping
    (secret / ".hidden").write_text("not a token file")
    assert load_tokens(f"{T2}, {T1}", secret, GATEWAY_TOKENS) == [T2, T1, T1, T2]


@pytest.mark.parametrize(
    ("text", "needle"),
    [("short-token", "fewer than 16"), ('has"quote' + "x" * 16, "characters a bearer")],
)
def test_bad_tokens_are_refused_without_echoing_them(text: str, needle: str) -> None:
    with pytest.raises(TokenError) as info:
        parse_tokens(text, "STORMWATCH_GATEWAY__TOKENS")
    assert needle in str(info.value) and text not in str(info.value)


def test_missing_empty_or_unreadable_token_files(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="does not exist"):
        load_tokens(None, tmp_path / "nope", GATEWAY_TOKENS)
    empty = tmp_path / "empty"
    empty.write_text("# nothing yet\n")
    with pytest.raises(TokenError, match="holds no token"):
        load_tokens(None, empty, GATEWAY_TOKENS)
    (tmp_path / "d").mkdir()
    with pytest.raises(TokenError, match="holds no files"):
        load_tokens(None, tmp_path / "d", GATEWAY_TOKENS)


def test_token_set_checks_whole_tokens() -> None:
    tokens = TokenSet([T1, T2, T1])
    assert len(tokens) == 2
    assert tokens.check(T1) and tokens.check(T2)
    assert not tokens.check(T1[:-1]) and not tokens.check(T1 + "x")
    assert not tokens.check("") and not tokens.check(None)


def test_bearer_header_parsing() -> None:
    assert bearer_token(f"Bearer {T1}") == T1
    assert bearer_token(f"bearer   {T1} ") == T1
    assert bearer_token(f"Basic {T1}") is None
    assert bearer_token("Bearer") is None
    assert bearer_token(None) is None


def test_auth_on_with_tokens_refused_without_and_contradictions() -> None:
    on = resolve_tokens(load_settings(gateway={"tokens": T1}).gateway)
    assert on is not None and on.check(T1)
    assert resolve_tokens(load_settings(gateway={"insecure": True}).gateway) is None
    with pytest.raises(TokenError, match="needs bearer tokens"):
        resolve_tokens(load_settings().gateway)
    with pytest.raises(TokenError, match="drop one or the other"):
        resolve_tokens(load_settings(gateway={"insecure": True, "tokens": T1}).gateway)


def test_ingest_command_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORMWATCH_GATEWAY__TOKENS", raising=False)
    runner = CliRunner()
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 2 and "needs bearer tokens" in result.output
    assert "Traceback" not in result.output

    result = runner.invoke(app, ["ingest", "--token-file", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "does not exist" in result.output

    monkeypatch.setenv("STORMWATCH_GATEWAY__MAX_ALERTS", "lots")
    result = runner.invoke(app, ["ingest", "--insecure"])
    assert result.exit_code == 2 and "STORMWATCH_GATEWAY__MAX_ALERTS" in result.output
    monkeypatch.delenv("STORMWATCH_GATEWAY__MAX_ALERTS")

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["ingest", "--insecure", "--port", str(port)])
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in result.output


def test_tokens_are_masked_in_config_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMWATCH_GATEWAY__TOKENS", T1)
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0 and T1 not in result.output
    assert '"tokens": "**********"' in result.output
