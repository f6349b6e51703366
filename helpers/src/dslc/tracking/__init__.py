"""MLflow tracking wired to the project (helpers/README.md, Tracking). Importing this
module does not import mlflow; the first run does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def run(
    name: str | None = None,
    *,
    params: Mapping[str, Any] | Any | None = None,
    tags: Mapping[str, Any] | None = None,
    experiment: str | None = None,
    nested: bool | None = None,
    parent: str | None = None,
) -> Run:
    """Open an MLflow run for a ``with`` block: ``with tracking.run() as run: ...``.

    ``nested``: None nests under an enclosing ``tracking.run`` and ends a stale MLflow run;
    True also nests under a run started outside dslc; False refuses to nest. ``parent``: the
    id of a run to nest under when no dslc run encloses this one, such as a study's run that
    parallel workers share in other processes."""
    return Run(name, params, tags, experiment, nested, parent)
