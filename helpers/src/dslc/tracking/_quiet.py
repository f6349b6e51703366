"""Keep MLflow's chatter out of the terminal during the calls dslc makes for the user.

Logging a model makes MLflow log several INFO lines and registering one prints two lines
of its own (``eprint``, not a logger). dslc reports each of those steps in one line of
its own instead. Everything here applies for the duration of one call: MLflow's log
level, filters and event stream are restored afterwards, so the user's own MLflow calls
are untouched; warnings other than the known useless ones still show.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator

# Messages MLflow logs on every save that say nothing to a dslc user, by logger name:
# uv environments have no pip, and cloudpickle is a decision dslc takes (see _models).
_NOISE = {
    "mlflow.utils.environment": "Failed to resolve installed pip version",
    "mlflow.sklearn": "Saving scikit-learn models in the pickle or cloudpickle format",
}


class _DropMessage(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self._start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self._start)


@contextlib.contextmanager
def quiet_logging() -> Iterator[None]:
    """MLflow's loggers at WARNING, minus the known-useless warnings, for one call."""
    mlflow_logger = logging.getLogger("mlflow")
    level = mlflow_logger.level
    filters = [(logging.getLogger(name), _DropMessage(start)) for name, start in _NOISE.items()]
    mlflow_logger.setLevel(max(level, logging.WARNING))
    for logger, drop in filters:
        logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            # mlflow.models.utils compares DataFrame columns to a range (pandas 3 warns).
            warnings.filterwarnings("ignore", message="Operation with range is deprecated")
            yield
    finally:
        for logger, drop in filters:
            logger.removeFilter(drop)
        mlflow_logger.setLevel(level)


@contextlib.contextmanager
def quiet_events() -> Iterator[None]:
    """No MLflow event lines ("Successfully registered model ...") during one call.

    MLflow prints them with ``eprint`` to its logging stream, which no log level
    controls; ``disable_logging``/``enable_logging`` switch that stream, and the state
    found is put back.
    """
    from mlflow.utils import logging_utils

    stream = logging_utils.MLFLOW_LOGGING_STREAM
    enabled = stream.enabled
    stream.enabled = False
    try:
        yield
    finally:
        stream.enabled = enabled


@contextlib.contextmanager
def environment(name: str, value: str) -> Iterator[None]:
    """``os.environ[name] = value`` for one call (MLflow reads its settings from there)."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved
