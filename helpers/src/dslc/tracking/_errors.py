"""Errors raised by :mod:`dslc.tracking` (all :class:`~dslc.errors.DslcError`, one line)."""

from __future__ import annotations

from ..errors import DslcError


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
