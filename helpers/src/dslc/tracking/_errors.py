"""How :mod:`dslc.tracking` reports: one-line errors, warnings and steps done.

Every error is a :class:`~dslc.errors.DslcError` with a single-line message.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import DslcError
from ..secrets import scrub

# Long enough for MLflow's messages, short enough for one terminal line of context.
MAX_CAUSE_LEN = 300


class TrackingError(DslcError):
    """Base class of tracking errors: MLflow refused an operation, or a run is misused.

    The message is scrubbed of secrets (:func:`dslc.secrets.scrub`) before DslcError
    folds it onto one line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


class MlflowMissingError(TrackingError):
    """mlflow (or filelock) is not installed: dslc's ``tracking`` extra is missing."""


class TrackingServerUnreachable(TrackingError):
    """The http(s) tracking server named by ``MLFLOW_TRACKING_URI`` does not answer."""


class TrackingServerError(TrackingError):
    """The tracking server answers, but with errors (HTTP 5xx), or is not an MLflow server."""


class StoreError(TrackingError):
    """The tracking store cannot be opened, created or migrated."""


class NoActiveRunError(TrackingError):
    """A logging call was made outside ``with tracking.run():``."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when empty), for a cause.

    Scrubbed of secrets first, so a cut never leaves part of one.
    """
    text = scrub(str(exc)).strip()
    return text.splitlines()[0][:MAX_CAUSE_LEN] if text else type(exc).__name__


def warn(message: str, *args: Any) -> None:
    """Log a warning, scrubbed of secrets, on the ``dslc.tracking`` logger."""
    _log(logging.WARNING, message, args)


def info(message: str, *args: Any) -> None:
    """Log what dslc did (one line per step), scrubbed, on the ``dslc.tracking`` logger."""
    _log(logging.INFO, message, args)


def _log(level: int, message: str, args: tuple[Any, ...]) -> None:
    from ..logging import get_logger  # deferred: configuring logging is a side effect

    get_logger("dslc.tracking").log(level, "%s", scrub(message % args if args else message))
