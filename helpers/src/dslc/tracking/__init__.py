"""MLflow tracking wired to the project (helpers/README.md, Tracking). Importing this
module does not import mlflow; the first run does."""

from __future__ import annotations

from .._secrets import is_secret_name
from ._errors import (
    MlflowMissingError,
    NoActiveRunError,
    StoreError,
    TrackingError,
    TrackingServerError,
    TrackingServerUnreachable,
)
from ._registry import Promotion, champion, model_uri, promote, promote_if_better, register
from ._run import Run, active
from ._store import client, ensure_store

__all__ = [
    "MlflowMissingError",
    "NoActiveRunError",
    "Promotion",
    "Run",
    "StoreError",
    "TrackingError",
    "TrackingServerError",
    "TrackingServerUnreachable",
    "active",
    "champion",
    "client",
    "ensure_store",
    "is_secret_name",
    "model_uri",
    "promote",
    "promote_if_better",
    "register",
    "run",
]


# ``tracking.run(...)`` opens a Run: one signature and one docstring, the class's.
run = Run
