"""Keep secrets out of everything dslc writes: MLflow params and tags, logs, errors.

A name is secret when one of its segments is a secret word. Names are split on anything
that is not a letter or digit and at lower-to-upper camelCase boundaries, then each
segment (lower-cased) is compared whole:

* ``key``, ``secret``, ``secrets``, ``token``, ``password``, ``passwd``, ``credential``,
  ``credentials``;
* the same words glued to a common prefix: ``apikey``, ``accesskey``, ``authtoken``,
  ``secretkey``, ``privatekey``, ``clientsecret``, ``dbpassword``...

So ``api_key``, ``db.password``, ``AWS_SECRET_ACCESS_KEY``, ``apiKey``, ``APIKEY`` and
``hf_token`` are secret, while ``keyboard``, ``monkey``, ``tokenizer`` and ``max_tokens``
are not (plural ``tokens``/``keys`` count things far more often than they hold secrets).
The rule errs on the safe side for a bare ``key`` segment (``sort.key`` is withheld); the
``dslc.withheld`` run tag names everything withheld so a false positive is visible.

Values are checked too: any text containing the value of a secret-named environment
variable (or ``.env`` entry) is withheld or scrubbed, so a password cannot slip in under
an innocent name. Secret values shorter than :data:`MIN_SECRET_LEN` are ignored, because
matching ``"1"`` or ``"true"`` would withhold half the params of a run.

Other dslc modules clean a message with :func:`scrub` before showing it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

MIN_SECRET_LEN = 5
REDACTED = "***"
_WORDS = ("key", "secrets?", "token", "password", "passwd", "credentials?")
_PREFIXES = (
    "access", "api", "app", "auth", "bearer", "client", "db", "encryption", "master",
    "private", "refresh", "secret", "session", "signing",
)  # fmt: skip
_SEGMENT = re.compile(rf"^(?:{'|'.join(_PREFIXES)})?(?:{'|'.join(_WORDS)})$")
_SPLIT = re.compile(r"[^0-9A-Za-z]+|(?<=[a-z0-9])(?=[A-Z])")
# The user-information part of a URL: "scheme://user:password@host" -> "scheme://***@host".
# The password may contain anything but "@" or whitespace; the last "@" before the host
# ends it, as URL parsers read it.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s@]*(?:@[^/?#\s@]*)*@")


def is_secret_name(name: str) -> bool:
    """True when ``name`` looks like it holds a secret (see the module docstring)."""
    return any(_SEGMENT.match(seg.lower()) for seg in _SPLIT.split(name) if seg)


def secret_values(env_file: Path | None = None) -> frozenset[str]:
    """Values of secret-named environment variables and ``env_file`` entries."""
    pairs: list[tuple[str, str | None]] = list(os.environ.items())
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values

        # The environment may override .env: the file's own value is a secret too.
        pairs.extend(dotenv_values(env_file).items())
    return frozenset(
        value.strip()
        for name, value in pairs
        if value and len(value.strip()) >= MIN_SECRET_LEN and is_secret_name(name)
    )


def scrub_urls(text: str) -> str:
    """Replace the credentials of every URL in ``text``: ``https://***@host/...``."""
    return _URL_USERINFO.sub(rf"\g<scheme>{REDACTED}@", text)


class Redactor:
    """Decides what may be logged, given the secret values of the environment."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        # Longest first, so scrubbing a secret that contains another removes it whole.
        self._values = tuple(sorted(set(values), key=len, reverse=True))

    def leaks(self, text: str) -> bool:
        """True when ``text`` contains a secret value."""
        return any(v in text for v in self._values)

    def withhold(self, name: str, value: str) -> bool:
        """True when a param or tag ``name=value`` must not be sent."""
        return is_secret_name(name) or self.leaks(value)

    def scrub(self, text: str) -> str:
        """Return ``text`` with every secret value replaced by ``***``."""
        for v in self._values:
            if v in text:
                text = text.replace(v, REDACTED)
        return text


def redactor(root: Path | None = None) -> Redactor:
    """A :class:`Redactor` for the environment and the project's ``.env`` (when in one)."""
    if root is None:
        from . import config
        from .errors import DslcError

        try:
            root = config.project_root()
        except DslcError:  # outside a project: the environment alone
            return Redactor(secret_values())
    return Redactor(secret_values(Path(root) / ".env"))


def scrub(text: str, root: Path | None = None) -> str:
    """Return ``text`` without secrets, ready for a log line or an error message.

    Removes the value of every secret-named variable (environment and the project's
    ``.env``) and the credentials of every URL. Call it on the full text, before any
    truncation or whitespace clean-up.
    """
    return scrub_urls(redactor(root).scrub(text))
