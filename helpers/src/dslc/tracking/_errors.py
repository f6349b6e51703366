"""How :mod:`dslc.tracking` speaks: one-line scrubbed errors and log lines; MLflow muted."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from .._secrets import scrub
from ..errors import DslcError

# Long enough for MLflow's messages, short enough for one terminal line of context.
MAX_CAUSE_LEN = 300
# What MLflow logs on every save that says nothing to a dslc user, by logger name: uv
# environments have no pip, and cloudpickle is a decision dslc takes (see _models).
_NOISE = {
    "mlflow.utils.environment": "Failed to resolve installed pip version",
    "mlflow.sklearn": "Saving scikit-learn models in the pickle or cloudpickle format",
}
# The lines mlflow.register_model prints to stderr (not through a logger).
_EVENTS = ("Successfully registered model ", "Registered model ", "Created version ")


class TrackingError(DslcError):
    """Base class of tracking errors: MLflow refused an operation, or a run is misused."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


class MlflowMissingError(TrackingError):
    """mlflow is not installed: dslc's ``tracking`` extra is missing."""


class TrackingServerUnreachable(TrackingError):
    """The http(s) tracking server named by ``MLFLOW_TRACKING_URI`` does not answer."""


class TrackingServerError(TrackingError):
    """The tracking server answers, but with errors (HTTP 5xx), or is not an MLflow server."""


class StoreError(TrackingError):
    """The tracking store cannot be opened, created or migrated."""


class NoActiveRunError(TrackingError):
    """A logging call was made outside ``with tracking.run():``."""


def require_mlflow() -> Any:
    try:
        import mlflow
    except ImportError as exc:
        raise MlflowMissingError(
            f"mlflow is not importable ({exc}); install the tracking extra: "
            "pip install 'dslc[tracking]'"
        ) from exc
    return mlflow


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name), scrubbed before the cut."""
    text = scrub(str(exc)).strip()
    return text.splitlines()[0][:MAX_CAUSE_LEN] if text else type(exc).__name__


@contextlib.contextmanager
def failing(what: str, catch: type[Exception] = Exception) -> Iterator[None]:
    """Raise what the block raises of ``catch`` as ``TrackingError("<what>: <first line>")``."""
    try:
        yield
    except catch as exc:
        raise TrackingError(f"{what}: {first_line(exc)}") from exc


def warn(message: str, *args: Any, level: int = logging.WARNING) -> None:
    """Log ``message % args``, scrubbed of secrets, on the ``dslc.tracking`` logger."""
    from ..logging import get_logger  # deferred: configuring logging is a side effect

    get_logger("dslc.tracking").log(level, "%s", scrub(message % args if args else message))


def info(message: str, *args: Any) -> None:
    """Log what dslc did (one line per step), like :func:`warn`."""
    warn(message, *args, level=logging.INFO)


def _useful(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_NOISE.get(record.name, "\0"))


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's loggers at WARNING, minus the known-useless warnings, for one call; its
    stderr lines (mlflow.register_model prints) minus :data:`_EVENTS` passed on after."""
    mlflow_logger = logging.getLogger("mlflow")
    level = mlflow_logger.level
    mlflow_logger.setLevel(max(level, logging.WARNING))
    for name in _NOISE:
        logging.getLogger(name).addFilter(_useful)
    captured = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(captured):
            # mlflow.models.utils compares DataFrame columns to a range (pandas 3 warns).
            warnings.filterwarnings("ignore", message="Operation with range is deprecated")
            yield
    finally:
        for name in _NOISE:
            logging.getLogger(name).removeFilter(_useful)
        mlflow_logger.setLevel(level)
        lines = captured.getvalue().splitlines(keepends=True)
        sys.stderr.write("".join(line for line in lines if not line.startswith(_EVENTS)))
