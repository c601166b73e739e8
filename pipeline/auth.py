"""Bearer tokens of the HTTP servers (the ingest gateway, the worker's web server): read
from the environment, a file or a directory of files; checked in constant time. A token is
never logged nor put in an error message. Token files are read again when they change
(looked at every ``RELOAD_EVERY_S`` at most), so tokens rotate without a restart."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from pipeline.domain.remediation.signing import MIN_KEY_CHARS

log = structlog.get_logger("stormwatch.auth")

#: RFC 6750 ``b64token`` (what may follow ``Bearer `` in an Authorization header)
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SEPARATORS = re.compile(r"[\s,]+")
MIN_TOKEN_CHARS = 16
#: token files are looked at (stat) at most this often for changes
RELOAD_EVERY_S = 10.0


class TokenError(ValueError):
    """Tokens cannot be loaded; the message is one line naming where and how to fix it."""


@dataclass(frozen=True)
class TokenNames:
    """How an operator sets one server's tokens, for the one-line errors: the variable of the
    inline tokens, the option or variable of the token file, the insecure switch."""

    inline: str
    file: str
    insecure: str


def parse_tokens(text: str, where: str) -> list[str]:
    """Tokens in ``text``: separated by newlines, spaces or commas; lines starting with ``#``
    are comments."""
    tokens: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for token in _SEPARATORS.split(line.strip()):
            if not token:
                continue
            if not _TOKEN68.fullmatch(token):
                raise TokenError(
                    f"a token in {where} has characters a bearer token cannot carry (letters, "
                    "digits and -._~+/ only, '=' at the end); generate one with "
                    "'openssl rand -hex 32'"
                )
            if len(token) < MIN_TOKEN_CHARS:
                raise TokenError(
                    f"a token in {where} has {len(token)} characters, fewer than "
                    f"{MIN_TOKEN_CHARS}; generate one with 'openssl rand -hex 32'"
                )
            tokens.append(token)
    return tokens


def _token_files(path: Path) -> list[Path]:
    """``path`` itself, or the regular files of a directory; names starting with a dot are
    skipped (a mounted Kubernetes secret keeps its bookkeeping in ``..data``)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.is_file())
    return [path]


def load_tokens(inline: str | None, path: Path | None, names: TokenNames) -> list[str]:
    """Every configured token: those of ``inline`` (the environment) and of ``path``."""
    tokens = parse_tokens(inline, names.inline) if inline else []
    if path is None:
        return tokens
    if not path.exists():
        raise TokenError(f"token file {str(path)!r} does not exist; fix {names.file}")
    files = _token_files(path)
    if not files:
        raise TokenError(f"token directory {str(path)!r} holds no files; put a token file in it")
    for file in files:
        try:
            text = file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise TokenError(f"cannot read token file {str(file)!r}: {reason}") from None
        found = parse_tokens(text, f"token file {str(file)!r}")
        if not found:
            raise TokenError(f"token file {str(file)!r} holds no token; write one token a line")
        tokens.extend(found)
    return tokens


def configured_tokens(
    inline: str | None, path: Path | None, insecure: bool, names: TokenNames
) -> TokenSet | None:
    """The accepted tokens (possibly none), or None when ``insecure`` turns authentication
    off; insecure with tokens is a contradiction (:class:`TokenError`)."""
    stamp = _files_stamp(path) if path is not None else None  # before reading: see FileTokens
    tokens = load_tokens(inline, path, names)
    if insecure:
        if tokens:
            raise TokenError(
                f"{names.insecure} turns authentication off, but tokens are configured too: "
                "drop one or the other"
            )
        return None
    if path is not None:
        return FileTokens(inline, path, names, tokens, stamp=stamp)
    return TokenSet(tokens)


def challenge(authorization: str | None) -> tuple[str, str]:
    """``(WWW-Authenticate value, one-line reason)`` refusing a request whose
    ``Authorization`` header is missing (None) or does not carry an accepted token."""
    value = 'Bearer realm="stormwatch"'
    if authorization is None:
        return value, "this endpoint needs an 'Authorization: Bearer <token>' header"
    return value + ', error="invalid_token"', "the bearer token is not valid"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class TokenSet:
    """Accepted tokens, kept as SHA-256 digests: a candidate's digest is compared with every
    one of them by :func:`hmac.compare_digest`, so the time taken tells neither which token
    nor how much of it matched (digests also hide the tokens' lengths)."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._digests = [_digest(t) for t in dict.fromkeys(tokens)]

    def __len__(self) -> int:
        return len(self._digests)

    def check(self, candidate: str | None) -> bool:
        if candidate is None:
            return False
        digest = _digest(candidate)
        ok = False
        for known in self._digests:
            ok |= hmac.compare_digest(known, digest)
        return ok


class FileTokens(TokenSet):
    """Tokens with some read from a file or directory, read again when it changes.

    At most every ``every_s`` (on a check) the files' :func:`_files_stamp` is compared with
    that of the last read; when they differ the tokens are loaded again. A
    rotation that cannot be read (a file half-written, emptied, or with a bad token) keeps
    the tokens in use and logs why, in one line that names no token.
    """

    def __init__(
        self,
        inline: str | None,
        path: Path,
        names: TokenNames,
        tokens: Iterable[str],
        every_s: float = RELOAD_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        stamp: object = None,
    ) -> None:
        """``stamp``: the files' :func:`_files_stamp` taken before ``tokens`` were read (a
        change while they were read is then seen at the next look)."""
        super().__init__(tokens)
        self._inline, self._path, self._names = inline, path, names
        self._every_s, self._clock = every_s, clock
        self._stamp = stamp if stamp is not None else _files_stamp(path)
        self._unreadable: object = None  # the stamp of a change that could not be read
        self._looked = clock()

    def check(self, candidate: str | None) -> bool:
        now = self._clock()
        if now - self._looked >= self._every_s:
            self._looked = now
            self._reload_if_changed()
        return super().check(candidate)

    def _reload_if_changed(self) -> None:
        stamp = _files_stamp(self._path)
        if stamp == self._stamp or stamp == self._unreadable:
            return
        try:
            tokens = load_tokens(self._inline, self._path, self._names)
        except TokenError as exc:
            self._unreadable = stamp
            log.warning(
                "token files changed but cannot be read; keeping the tokens in use", reason=str(exc)
            )
            return
        self._stamp = stamp
        self._digests = [_digest(t) for t in dict.fromkeys(tokens)]
        log.info("token files changed: tokens read again", tokens=len(self._digests))


def _files_stamp(path: Path) -> tuple[tuple[str, int, int, int, int], ...] | None:
    """What tells a token file changed: per file its name, inode, size and modification and
    change times (a copy keeping the old modification time still changes the others)."""
    try:
        files = _token_files(path) if path.exists() else []
        return tuple(
            (f.name, (st := f.stat()).st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            for f in files
        )
    except OSError:
        return None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class ApproverKeyError(ValueError):
    """Approver keys cannot be loaded; the message is one line naming where and how to fix
    it (never a key)."""


_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]*")


def load_approver_keys(path: Path, min_chars: int = MIN_KEY_CHARS) -> dict[str, str]:
    """Approvers' signing keys (user -> key): a directory with one file per approver (file
    name = user, content = key, names starting with ``.`` skipped: a mounted Kubernetes
    secret), or a file of ``user key`` lines (``#`` comments). Errors name the file or line,
    never a key nor what might be one."""
    fix = "fix STORMWATCH_REMEDIATION__APPROVER_KEYS"
    if not path.exists():
        raise ApproverKeyError(f"approver keys {str(path)!r} do not exist; {fix}")
    pairs: list[tuple[str, str, str]] = []  # (user, key, where)
    try:
        if path.is_dir():
            for file in _token_files(path):
                pairs.append((file.name, file.read_text().strip(), f"key file {str(file)!r}"))
        else:
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                user, *rest = line.split(None, 1)
                pairs.append((user, rest[0].strip() if rest else "", f"line {n} of {str(path)!r}"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ApproverKeyError(f"cannot read approver keys {str(path)!r}: {reason}") from None
    keys: dict[str, str] = {}
    for user, key, where in pairs:
        if not _USER.fullmatch(user) or len(user) > 64:
            raise ApproverKeyError(
                f"{where} does not start with a user name (letters, digits, _.@+-), then a "
                f"space and the key; {fix}"
            )
        if len(key) < min_chars or any(c.isspace() for c in key):
            raise ApproverKeyError(
                f"{where}: expected a user name, a space and a key of one word of {min_chars} "
                "characters at least; generate one with 'openssl rand -hex 32'"
            )
        keys[user] = key
    if not keys:
        raise ApproverKeyError(f"approver keys {str(path)!r} hold no key; {fix}")
    return keys
