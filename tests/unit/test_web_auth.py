"""The worker's web server: writes need a bearer token (401 without a valid one, 403 with
none configured, open with the insecure switch); reads are open unless protected; bad token
configuration stops `stormwatch worker` with one line; `stormwatch dev` makes a token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer
from faust.web import Request, Response, View
from typer.testing import CliRunner

from pipeline.app.devstack import dev_web_token
from pipeline.app.web_auth import NO_TOKENS, WebAuth
from pipeline.auth import TokenError, TokenSet
from pipeline.cli import app as cli_app
from pipeline.config import load_settings

TOKEN = "w" * 31 + "1"
OTHER = "x" * 32

Client = Callable[[WebAuth], Awaitable[TestClient[Any, Any]]]


def _worker_app(auth: WebAuth) -> faust.App:
    """A Faust app wired as the worker wires its own: the middleware through
    ``web_application_options``, a write view, a read page and /healthz."""
    app = faust.App(
        "web-auth-test",
        web_enabled=True,
        web_application_options={"middlewares": [auth.middleware()]},
    )
    owners: dict[str, str] = {}

    @app.page("/oncall/owners/{service}")
    class Owner(View):
        async def get(self, request: Request, service: str) -> Response:
            return self.json({"team": owners.get(service)})

        async def put(self, request: Request, service: str) -> Response:
            body = json.loads(await self.read_request_content(request))
            owners[service] = body["team"]
            return self.json({"service": service, "team": body["team"]})

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    return app


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    clients: list[TestClient[Any, Any]] = []

    async def make(auth: WebAuth) -> TestClient[Any, Any]:
        web = _worker_app(auth).web
        client: TestClient[Any, Any] = TestClient(TestServer(web.web_app))  # type: ignore[attr-defined]
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_writes_need_a_valid_token(client: Client) -> None:
    c = await client(WebAuth(TokenSet([TOKEN])))
    resp = await c.put("/oncall/owners/frontend", json={"team": "web"})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="stormwatch"'
    assert await resp.json() == {
        "error": "this endpoint needs an 'Authorization: Bearer <token>' header"
    }
    resp = await c.put("/oncall/owners/frontend", json={"team": "web"}, headers=bearer(OTHER))
    assert resp.status == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    assert OTHER not in await resp.text()
    resp = await c.put(
        "/oncall/owners/frontend", json={"team": "web"}, headers={"Authorization": TOKEN}
    )
    assert resp.status == 401  # no scheme: not a bearer token
    # nothing was written by the refused requests; reads stay open
    assert await (await c.get("/oncall/owners/frontend")).json() == {"team": None}
    resp = await c.put("/oncall/owners/frontend", json={"team": "web"}, headers=bearer(TOKEN))
    assert resp.status == 200 and await resp.json() == {"service": "frontend", "team": "web"}
    assert await (await c.get("/oncall/owners/frontend")).json() == {"team": "web"}
    # every method but GET, HEAD and OPTIONS is a write, routed or not
    for method, path in [("DELETE", "/oncall/owners/frontend"), ("POST", "/anything")]:
        assert (await c.request(method, path)).status == 401
        assert (await c.request(method, path, headers=bearer(TOKEN))).status in (404, 405)


async def test_without_tokens_writes_are_refused_saying_how_to_configure(client: Client) -> None:
    auth = WebAuth.from_settings(load_settings().worker)
    assert auth.mode == "closed"
    c = await client(auth)
    resp = await c.put("/oncall/owners/frontend", json={"team": "web"}, headers=bearer(TOKEN))
    assert resp.status == 403 and await resp.json() == {"error": NO_TOKENS}
    assert "STORMWATCH_WORKER__WEB_TOKEN_FILE" in NO_TOKENS and "\n" not in NO_TOKENS
    assert (await c.get("/oncall/owners/frontend")).status == 200


async def test_insecure_accepts_writes_without_a_token(client: Client) -> None:
    auth = WebAuth.from_settings(load_settings(worker={"web_insecure": True}).worker)
    assert auth.mode == "insecure"
    c = await client(auth)
    resp = await c.put("/oncall/owners/frontend", json={"team": "web"})
    assert resp.status == 200


async def test_protected_reads_leave_probes_and_scrapers_open(client: Client) -> None:
    c = await client(WebAuth(TokenSet([TOKEN]), protect_reads=True))
    resp = await c.get("/oncall/owners/frontend")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await c.get("/oncall/owners/frontend", headers=bearer(TOKEN))).status == 200
    assert (await c.get("/healthz")).status == 200
    assert WebAuth(TokenSet([TOKEN]), protect_reads=True).refusal("GET", "/metrics", None) is None


def test_tokens_from_settings_env_file_and_directory(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "oncall-bot").write_text(OTHER + "\n")
    (secret / "..data").mkdir()  # a mounted Kubernetes secret's bookkeeping
    auth = WebAuth.from_settings(
        load_settings(worker={"web_tokens": TOKEN, "web_token_file": secret}).worker
    )
    assert auth.mode == "tokens"
    for token in (TOKEN, OTHER):
        assert auth.refusal("PUT", "/oncall/owners/x", f"Bearer {token}") is None


@pytest.mark.parametrize(
    ("worker", "needle"),
    [
        ({"web_tokens": "short-token"}, "STORMWATCH_WORKER__WEB_TOKENS has 11 characters"),
        ({"web_token_file": "/nonexistent/tokens"}, "fix STORMWATCH_WORKER__WEB_TOKEN_FILE"),
        ({"web_tokens": TOKEN, "web_insecure": True}, "drop one or the other"),
        ({"web_protect_reads": True}, "WEB_PROTECT_READS needs tokens"),
        ({"web_protect_reads": True, "web_insecure": True}, "unset STORMWATCH_WORKER__WEB_INS"),
    ],
)
def test_bad_token_configuration_is_one_line(worker: dict[str, Any], needle: str) -> None:
    with pytest.raises(TokenError) as info:
        WebAuth.from_settings(load_settings(worker=worker).worker)
    message = str(info.value)
    assert needle in message and "\n" not in message and "short-token" not in message


def test_worker_command_refuses_bad_tokens_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMWATCH_WORKER__WEB_TOKENS", "short-token")
    result = CliRunner().invoke(cli_app, ["worker"])
    assert result.exit_code == 2 and "fewer than 16" in result.output
    assert "Traceback" not in result.output and "short-token" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    monkeypatch.setenv("STORMWATCH_WORKER__WEB_TOKENS", TOKEN)
    result = CliRunner().invoke(cli_app, ["config"])
    assert result.exit_code == 0 and TOKEN not in result.output
    assert '"web_tokens": "**********"' in result.output


def test_dev_makes_a_token_unless_authentication_is_configured() -> None:
    env: dict[str, str] = {}
    token = dev_web_token(env)
    assert token is not None and env["STORMWATCH_WORKER__WEB_TOKENS"] == token
    auth = WebAuth.from_settings(load_settings(worker={"web_tokens": token}).worker)
    assert auth.refusal("POST", "/oncall/schedules/s/overrides", f"Bearer {token}") is None
    assert dev_web_token(mine := {"STORMWATCH_WORKER__WEB_INSECURE": "true"}) is None
    assert "STORMWATCH_WORKER__WEB_TOKENS" not in mine


async def test_every_refusal_is_reported_with_its_status_and_kind(client: Client) -> None:
    seen: list[tuple[int, bool]] = []
    auth = WebAuth(TokenSet([TOKEN]), protect_reads=True)
    auth.on_refused = lambda refused, write: seen.append((refused.status, write))
    c = await client(auth)
    assert (await c.put("/oncall/owners/cart", json={"team": "a"})).status == 401
    wrong = await c.put("/oncall/owners/cart", json={"team": "a"}, headers=bearer(OTHER))
    assert wrong.status == 401
    assert (await c.get("/oncall/owners/cart")).status == 401
    assert (await c.get("/oncall/owners/cart", headers=bearer(TOKEN))).status == 200
    assert (await c.get("/healthz")).status == 200
    assert seen == [(401, True), (401, True), (401, False)]
    closed = WebAuth(TokenSet([]))
    closed.on_refused = lambda refused, write: seen.append((refused.status, write))
    c = await client(closed)
    assert (await c.delete("/oncall/owners/cart")).status == 403
    assert seen[-1] == (403, True)
