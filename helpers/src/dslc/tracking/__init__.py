"""MLflow tracking wired to the project: one store, readable runs, batched metrics.

Typical use, from ``src/`` or a notebook::

    from dslc import tracking

    with tracking.run(params={"model": {"C": 1.0}}) as run:
        for epoch in range(100):
            run.log_metric("loss", loss, step=epoch)
        run.log_figure(fig, "roc.png")
        info = run.log_model(model, name="model", input_example=X[:5])
    version = tracking.register(info)  # name: `model` under [tool.dslc]
    print(tracking.promote_if_better(version))  # @champion moves only if it is better

What dslc adds to plain MLflow:

* The tracking URI is always explicit (:func:`dslc.config.tracking_uri`):
  ``MLFLOW_TRACKING_URI`` from the environment or the project's ``.env``, else
  ``sqlite:///<project root>/mlflow.db``, whatever the working directory. Experiments dslc
  creates on a store without a server keep artifacts in ``<root>/mlartifacts``.
* The store is created and migrated once, under ``<root>/.dslc/mlflow-store.lock``, so
  parallel first runs do not race in MLflow's migrations.
* Runs are named ``<script or notebook>-<YYYYmmdd-HHMMSS>``; a run opened inside another
  ``with tracking.run()`` nests under it; an MLflow run left active outside any live
  ``with`` (a notebook cell that raised after ``mlflow.start_run()``) is ended as KILLED
  with a warning. ``nested=True`` nests under such a run instead.
* Tags: git commit, branch and dirty state (from the project root, so notebooks and
  ``python -c`` get them too), Python, dslc and key package versions, the source, and the
  fingerprint of every dataset loaded or saved through :mod:`dslc.data` (also logged as
  run inputs whose digest is dslc's full-content fingerprint).
* Metrics are buffered and sent with ``log_batch``; a metric MLflow would refuse is
  dropped with a warning naming it. A failing run keeps everything logged, is marked
  FAILED and gets a ``dslc.error`` tag.
* Params and tags that look secret are never sent (see :mod:`dslc._secrets`); the
  ``dslc.withheld`` tag names them.

The experiment defaults to ``MLFLOW_EXPERIMENT_ID`` / ``MLFLOW_EXPERIMENT_NAME`` when set
(``mlflow run`` sets the id), else the project name. Importing this module does not import
mlflow; the first run does.
"""

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
    "log_metric",
    "log_metrics",
    "log_params",
    "model_uri",
    "promote",
    "promote_if_better",
    "register",
    "run",
    "set_tags",
]


def run(
    name: str | None = None,
    *,
    params: Mapping[str, Any] | Any | None = None,
    tags: Mapping[str, Any] | None = None,
    experiment: str | None = None,
    nested: bool | None = None,
) -> Run:
    """Open an MLflow run for a ``with`` block: ``with tracking.run() as run: ...``.

    Args:
        name: run name; default ``<script or notebook stem>-<YYYYmmdd-HHMMSS>``.
        params: params to log at the start (nested mappings are flattened).
        tags: extra tags (secret-looking ones are withheld).
        experiment: experiment name; default as described in the module docstring.
        nested: None nests under an enclosing ``tracking.run`` and ends a stale run;
            True also nests under a run started outside dslc; False refuses to nest.
    """
    return Run(name=name, params=params, tags=tags, experiment=experiment, nested=nested)


def _current() -> Run:
    current = active()
    if current is None:
        raise NoActiveRunError("no dslc run is active; wrap the code in `with tracking.run():`")
    return current


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log a metric to the active dslc run (buffered; see :meth:`Run.log_metric`)."""
    _current().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log metrics to the active dslc run (buffered; see :meth:`Run.log_metrics`)."""
    _current().log_metrics(metrics, step)


def log_params(params: Mapping[str, Any] | Any) -> None:
    """Log params to the active dslc run (flattened; see :meth:`Run.log_params`)."""
    _current().log_params(params)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set tags on the active dslc run (see :meth:`Run.set_tags`)."""
    _current().set_tags(tags)
