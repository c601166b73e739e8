"""Who may use the worker's web server.

A **write** is any request whose method is not GET, HEAD or OPTIONS (today: on-call
ownership and overrides, ``PUT``/``POST``/``DELETE /oncall/...``; any write added later is
covered the same way, since the check is made on the method before routing). A write needs
``Authorization: Bearer <token>`` with a configured token (``STORMWATCH_WORKER__WEB_TOKENS`` /
``__WEB_TOKEN_FILE``): without one it gets 401 and ``WWW-Authenticate: Bearer``. With no
token configured, writes are refused with 403 and a line saying how to configure tokens,
unless ``STORMWATCH_WORKER__WEB_INSECURE`` turns the check off (development only).

**Reads** are open (dashboards, browsers, calendar subscriptions) unless
``STORMWATCH_WORKER__WEB_PROTECT_READS`` is set: then every read but ``/healthz`` and
``/metrics`` (probes, scrapers) needs a token too. Tokens are checked in constant time
(:class:`pipeline.auth.TokenSet`) and never logged. Refused writes are logged (method, path,
status, peer); every refusal is counted in ``stormwatch_web_refused_total``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import structlog
from aiohttp import web

from pipeline.auth import (
    TokenError,
    TokenNames,
    TokenSet,
    bearer_token,
    challenge,
    configured_tokens,
)
from pipeline.config import WorkerSettings

log = structlog.get_logger("stormwatch.web")

#: methods that change nothing; every other method is a write
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: served without a token even when reads are protected
OPEN_PATHS = frozenset({"/healthz", "/metrics"})

WORKER_TOKENS = TokenNames(
    inline="STORMWATCH_WORKER__WEB_TOKENS",
    file="STORMWATCH_WORKER__WEB_TOKEN_FILE",
    insecure="STORMWATCH_WORKER__WEB_INSECURE",
)

NO_TOKENS = (
    "writes are off on this worker: no bearer tokens are configured; set "
    "STORMWATCH_WORKER__WEB_TOKEN_FILE (a file, or a mounted secret directory) or "
    "STORMWATCH_WORKER__WEB_TOKENS and restart, then send 'Authorization: Bearer <token>' "
    "(STORMWATCH_WORKER__WEB_INSECURE=true accepts writes without a token: development only)"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Refusal:
    """A request turned away: its status, one-line reason and headers."""

    status: int
    error: str
    headers: dict[str, str] = field(default_factory=dict)


class WebAuth:
    """The policy above. ``tokens`` None: authentication off (insecure); an empty set: no
    token configured, writes refused."""

    def __init__(self, tokens: TokenSet | None, protect_reads: bool = False) -> None:
        if protect_reads and not tokens:
            raise TokenError(
                "STORMWATCH_WORKER__WEB_PROTECT_READS needs tokens: set "
                "STORMWATCH_WORKER__WEB_TOKEN_FILE or STORMWATCH_WORKER__WEB_TOKENS"
                + (" (and unset STORMWATCH_WORKER__WEB_INSECURE)" if tokens is None else "")
            )
        self.tokens = tokens
        self.protect_reads = protect_reads
        #: called with each refusal and whether the request was a write (the worker sets it
        #: to count them in ``stormwatch_web_refused_total``)
        self.on_refused: Callable[[Refusal, bool], None] | None = None

    @classmethod
    def from_settings(cls, w: WorkerSettings) -> WebAuth:
        """The policy of the worker settings; :class:`TokenError` (one line) for a bad token,
        a missing or empty token file, or a contradiction."""
        inline = w.web_tokens.get_secret_value() if w.web_tokens is not None else None
        tokens = configured_tokens(inline, w.web_token_file, w.web_insecure, WORKER_TOKENS)
        return cls(tokens, w.web_protect_reads)

    @property
    def mode(self) -> Literal["tokens", "insecure", "closed"]:
        """``tokens``: writes need one; ``insecure``: no check; ``closed``: writes refused."""
        if self.tokens is None:
            return "insecure"
        return "tokens" if self.tokens else "closed"

    def refusal(self, method: str, path: str, authorization: str | None) -> Refusal | None:
        """None when the request may go on, else why not."""
        if method.upper() in READ_METHODS and (not self.protect_reads or path in OPEN_PATHS):
            return None
        if self.tokens is None:
            return None
        if not self.tokens:
            return Refusal(403, NO_TOKENS)
        if self.tokens.check(bearer_token(authorization)):
            return None
        authenticate, reason = challenge(authorization)
        return Refusal(401, reason, {"WWW-Authenticate": authenticate})

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        """An aiohttp middleware applying the policy before any route (the worker's Faust app
        installs it through ``web_application_options``)."""

        @web.middleware
        async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
            refused = self.refusal(
                request.method, request.path, request.headers.get("Authorization")
            )
            if refused is None:
                return await handler(request)
            write = request.method.upper() not in READ_METHODS
            if self.on_refused is not None:
                self.on_refused(refused, write)
            if write:
                log.warning(
                    "write refused",
                    method=request.method,
                    path=request.path,
                    status=refused.status,
                    peer=request.remote,
                )
            return web.json_response(
                {"error": refused.error}, status=refused.status, headers=refused.headers
            )

        return authenticate
