"""dslc's one scrubbing rule for everything it writes: MLflow params and tags, logs, errors.
Which names and values are secret: helpers/README.md (Secrets)."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from . import config
from ._atomic import read_regular
from .errors import DslcError

MIN_SECRET_LEN = 5
REDACTED = "***"

_PREFIXES = (
    "access", "api", "app", "auth", "bearer", "client", "db", "encryption", "master",
    "private", "refresh", "secret", "session", "signing",
)  # fmt: skip
_PREFIX = "|".join(_PREFIXES)
_STRONG = re.compile("password|passwd|passphrase|secret|credential|webhook")
_KEY_OR_TOKEN = re.compile(rf"^(?:{_PREFIX})?(?:key|token)$|^(?:{_PREFIX})(?:keys|tokens)$")
_LAST = frozenset({"dsn", "auth", "pat", "cookie"})
_CONNECTION = frozenset({"url", "uri", "dsn", "string"})
_DATABASES = frozenset(
    {"database", "db", "conn", "connection", "sqlalchemy", "postgres", "postgresql", "pg",
     "mysql", "mssql", "redis", "mongo", "mongodb", "amqp", "broker"}
)  # fmt: skip
_SPLIT = re.compile(r"[^0-9A-Za-z]+|(?<=[a-z0-9])(?=[A-Z])")
# The user-information part of a URL: "scheme://user:password@host" -> "scheme://***@host".
# It ends at the last "@" before the host (a raw "@" in a password is read as URL parsers
# read it), and never crosses "/", "?", "#" or whitespace.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s@]*(?:@[^/?#\s@]*)*@")
# A setting written name=value, in a URL's query ("?sslpassword=...") or in text
# ("PGPASSWORD=..."): its value goes when the name is secret, however short the value is.
_ASSIGNMENT = re.compile(r"(?<![\w.\-])(?P<name>[A-Za-z_][\w.\-]*)=(?P<value>[^?&#\s'\"]+)")


def is_secret_name(name: str) -> bool:
    """True when ``name`` looks like it holds a secret (helpers/README.md, Secrets)."""
    segments = [seg.lower() for seg in _SPLIT.split(name) if seg]
    for i, seg in enumerate(segments):
        plural = seg in ("keys", "tokens") and i > 0 and segments[i - 1] in _PREFIXES
        if plural or _STRONG.search(seg) or _KEY_OR_TOKEN.match(seg):
            return True
    last = segments[-1] if segments else ""
    if last in _LAST or (last == "pwd" and len(segments) > 1):
        return True
    return last in _CONNECTION and len(segments) > 1 and segments[-2] in _DATABASES


def secret_values(env_file: Path | None = None) -> frozenset[str]:
    """Secret values of the environment and of ``env_file`` (helpers/README.md, Secrets)."""
    text = ""
    if env_file is not None:
        # A .env that cannot be read holds nothing to hide (its own error says why).
        with contextlib.suppress(OSError):
            text = read_regular(env_file).decode("utf-8", "replace")
    return _secrets_of(frozenset(os.environ.items()), text)


@functools.lru_cache(maxsize=16)  # scrub runs for every log line: parse each state once
def _secrets_of(environ: frozenset[tuple[str, str]], env_text: str) -> frozenset[str]:
    from dotenv import dotenv_values

    # The environment may override .env: the file's own value is a secret too.
    pairs = [*environ, *dotenv_values(stream=io.StringIO(env_text)).items()]
    values: set[str] = set()
    for name, value in pairs:
        if value and "://" in value:  # a URL's password, raw and percent-decoded
            with contextlib.suppress(ValueError):  # not a URL after all
                password = urlsplit(value.strip()).password
                values.update([password, unquote(password)] if password else [])
        if value and is_secret_name(name):
            values.add(value.strip())
    return frozenset(values)


def scrub_urls(text: str) -> str:
    """Replace credentials found by their place in ``text``, whatever their length: a URL's
    user part (``https://***@host/...``) and secret-named settings (``?password=***``)."""
    text = _URL_USERINFO.sub(rf"\g<scheme>{REDACTED}@", text)
    return _ASSIGNMENT.sub(
        lambda m: f"{m['name']}={REDACTED}" if is_secret_name(m["name"]) else m[0], text
    )


class Redactor:
    """Finds and removes given secret values (and URL credentials) in any text."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        # Counted without whitespace: every match is then longer than "***", so each
        # replacement in scrub() shortens the text.
        kept = {v.strip() for v in values if len("".join(v.split())) >= MIN_SECRET_LEN}
        # Longest first, so a secret that contains another is removed whole; any run of
        # whitespace where it has one.
        ordered = [r"\s+".join(map(re.escape, v.split())) for v in sorted(kept, key=len)[::-1]]
        self._pattern = re.compile("|".join(ordered) or "(?!)")  # (?!): matches nothing

    def leaks(self, text: str) -> bool:
        return self._pattern.search(text) is not None

    def withhold(self, name: str, value: str) -> bool:
        """True when a param or tag ``name=value`` must not be sent."""
        return is_secret_name(name) or self.leaks(name) or self.leaks(value)

    def scrub(self, text: str) -> str:
        """Return ``text`` with every secret value and URL credential replaced by ``***``."""
        # Again until nothing is left: a replacement may complete another occurrence
        # ("ab" + "***" + "..."). Each pass shortens the text, so this ends.
        count = 1
        while count:
            text, count = self._pattern.subn(REDACTED, text)
        return scrub_urls(text)


def scrub(text: str, known: Iterable[str] = ()) -> str:
    """``text`` without the secrets of the environment and the project's ``.env``, the
    ``known`` values a caller holds, and credentials found by their place (``scrub_urls``).
    Call it on the full text, before any cut or clean-up."""
    env_file = _env_file(os.getcwd(), os.environ.get("DSLC_PROJECT_ROOT"))
    return _redactor(secret_values(env_file) | frozenset(known)).scrub(text)


@functools.lru_cache(maxsize=8)  # looked up once per folder: scrub runs for every log line
def _env_file(cwd: str, root_setting: str | None) -> Path | None:
    try:
        return config.project_root(Path(cwd)) / ".env"
    except DslcError:  # outside a project: the environment alone
        return None


_redactor = functools.lru_cache(maxsize=8)(Redactor)  # its pattern compiled once per secrets
