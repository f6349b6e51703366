"""How :mod:`dslc.tracking` reports problems: one-line errors and warnings.

Every error is a :class:`~dslc.errors.DslcError` with a single-line message.
"""

from __future__ import annotations

from typing import Any

from ..errors import DslcError

# Long enough for MLflow's messages, short enough for one terminal line of context.
MAX_CAUSE_LEN = 300


class TrackingError(DslcError):
    """Base class of tracking errors: MLflow refused an operation, or a run is misused."""


class MlflowMissingError(TrackingError):
    """mlflow (or filelock) is not installed: dslc's ``tracking`` extra is missing."""


class TrackingServerUnreachable(TrackingError):
    """The http(s) tracking server named by ``MLFLOW_TRACKING_URI`` does not answer."""


class StoreError(TrackingError):
    """The tracking store cannot be opened, created or migrated."""


class NoActiveRunError(TrackingError):
    """A logging call was made outside ``with tracking.run():``."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when empty), for a cause."""
    text = str(exc).strip()
    return text.splitlines()[0][:MAX_CAUSE_LEN] if text else type(exc).__name__


def warn(message: str, *args: Any) -> None:
    """Log a warning on the ``dslc.tracking`` logger (configuring logging if nobody did)."""
    from ..logging import get_logger  # deferred: configuring logging is a side effect

    get_logger("dslc.tracking").warning(message, *args)
