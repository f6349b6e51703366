"""In-process publish/subscribe of dataset usage.

``data.load`` and ``data.save`` publish a :class:`DatasetUse`; tracking subscribes to
record run inputs and outputs. Data code never imports tracking (or mlflow) this way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_listeners: list[Callable[[DatasetUse], None]] = []


@dataclass(frozen=True)
class DatasetUse:
    """One read or write of a dataset.

    For a SQL source, ``location`` is ``"sql://<CONNECTION VARIABLE NAME>"`` (never the
    URL's value), ``format`` is ``"sql"``, ``fingerprint`` is None and ``query`` holds
    the SQL that ran.
    """

    name: str | None  # catalog reference, None for a plain path
    location: str  # absolute path, URL (credentials removed) or sql://VARIABLE
    fingerprint: str | None  # "<algo>:<hex>", None when not computed
    format: str
    role: Literal["input", "output"]
    query: str | None = None  # the SQL of a SQL source


def subscribe(fn: Callable[[DatasetUse], None]) -> Callable[[], None]:
    """Call ``fn`` for every published :class:`DatasetUse`; returns an unsubscribe function."""
    with _lock:
        _listeners.append(fn)

    def unsubscribe() -> None:
        with _lock, contextlib.suppress(ValueError):  # ValueError: already unsubscribed
            _listeners.remove(fn)  # one registration: fn may be subscribed twice

    return unsubscribe


def has_listeners() -> bool:
    """True when someone listens (lets callers skip work such as fingerprinting)."""
    return bool(_listeners)


def publish(use: DatasetUse) -> None:
    """Deliver ``use`` to every listener; a failing listener is logged, never raised."""
    with _lock:
        listeners = list(_listeners)
    for fn in listeners:
        try:
            fn(use)
        except Exception as exc:  # a tracking hiccup must not break data loading
            _log.warning("dataset listener %r failed: %s: %s", fn, type(exc).__name__, exc)
