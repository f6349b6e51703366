"""In-process publish/subscribe of dataset usage: ``data.load`` and ``data.save`` publish a
:class:`DatasetUse`, tracking subscribes, so data code never imports tracking or mlflow."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

_log = logging.getLogger(__name__)
# list.append, list.remove and list() are atomic: the list needs no lock of its own.
_listeners: list[Callable[[DatasetUse], None]] = []


@dataclass(frozen=True)
class DatasetUse:
    """One read or write of a dataset."""

    name: str | None  # catalog reference, None for a plain path
    location: str  # absolute path, URL (credentials removed) or sql://CONNECTION_VARIABLE
    fingerprint: str | None  # "<algo>:<hex>", None when not computed (always for SQL)
    format: str
    role: Literal["input", "output"]
    query: str | None = None  # the SQL of a SQL source


def subscribe(fn: Callable[[DatasetUse], None]) -> Callable[[], None]:
    """Call ``fn`` for every published :class:`DatasetUse`; returns an unsubscribe function."""
    _listeners.append(fn)

    def unsubscribe() -> None:
        with contextlib.suppress(ValueError):  # ValueError: already unsubscribed
            _listeners.remove(fn)  # one registration: fn may be subscribed twice

    return unsubscribe


def has_listeners() -> bool:  # lets callers skip work such as fingerprinting
    return bool(_listeners)


def publish(use: DatasetUse) -> None:
    """Deliver ``use`` to every listener; a failing listener is logged, never raised."""
    for fn in list(_listeners):
        try:
            fn(use)
        except Exception as exc:  # a tracking hiccup must not break data loading
            _log.warning("dataset listener %r failed: %s: %s", fn, type(exc).__name__, exc)
