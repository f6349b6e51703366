"""Tracking URI, one-time store initialisation under a file lock, and experiments.

MLflow's defaults are wrong for a project: with no URI it opens ``sqlite:///mlflow.db``
relative to the working directory (a notebook in ``notebooks/`` gets its own store), and
eight processes opening a brand-new SQLite store at once race in Alembic's migrations.
So every entry point sets the URI explicitly and the first open of a store, in any
process of the project, happens under ``<root>/.dslc/mlflow-store.lock``.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .. import config
from . import _server
from ._errors import (
    MlflowMissingError,
    StoreError,
    TrackingError,
    first_line,
)
from ._quiet import quiet_logging

if TYPE_CHECKING:
    from filelock import FileLock
    from mlflow.tracking import MlflowClient

LOCK_NAME = "mlflow-store.lock"
# Generous: a first migration of a SQLite store takes a few seconds, a slow disk more.
LOCK_TIMEOUT_S = 300.0
_SERVED_SCHEMES = frozenset({"http", "https", "databricks", "databricks-uc", "uc"})
_HTTP_SCHEMES = frozenset({"http", "https"})

# Store URIs already opened (migrated, reachable) by this process: later runs skip the lock.
_initialised: set[str] = set()
_init_lock = threading.Lock()


def require_mlflow() -> Any:
    """Import and return mlflow, or raise a one-line error naming the missing extra."""
    try:
        import mlflow
    except ImportError as exc:
        raise MlflowMissingError(
            f"mlflow is not importable ({exc}); install the tracking extra: "
            "pip install 'dslc[tracking]'"
        ) from exc
    return mlflow


def uri(root: Path | None = None) -> str:
    """Return the tracking URI in force for the project (see :func:`dslc.config.tracking_uri`)."""
    return config.tracking_uri(root)


def scheme(store_uri: str) -> str:
    """Return the URI scheme, lower-case (``"sqlite"``, ``"http"``...; ``""`` for a path)."""
    return urlparse(store_uri).scheme.lower()


def is_served(store_uri: str) -> bool:
    """True when a tracking server (not this process) decides where artifacts go."""
    return scheme(store_uri) in _SERVED_SCHEMES or store_uri in _SERVED_SCHEMES


def _lock(root: Path) -> FileLock:
    try:
        from filelock import FileLock
    except ImportError as exc:
        raise MlflowMissingError(
            "filelock is not installed; install the tracking extra: pip install 'dslc[tracking]'"
        ) from exc
    return FileLock(str(config.state_dir(root) / LOCK_NAME), timeout=LOCK_TIMEOUT_S)


class _StoreLock:
    """The project's store lock as a context manager that raises one-line errors."""

    def __init__(self, root: Path) -> None:
        self._lock = _lock(root)

    def __enter__(self) -> None:
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout as exc:
            raise StoreError(
                f"waited {LOCK_TIMEOUT_S:.0f} s for {self._lock.lock_file}: another process "
                "is still creating the MLflow store; wait for it or stop it, then retry"
            ) from exc

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def ensure_store(root: Path | None = None) -> str:
    """Point mlflow at the project's store and make sure the store is usable.

    Creates and migrates an embedded (database) store on first use, under the project's
    file lock so parallel first runs do not race; checks that an http(s) server answers
    and that its API works (see :mod:`dslc.tracking._server`).
    Cheap after the first call in a process. Returns the tracking URI.

    Raises:
        StoreError: the store cannot be created, opened or is from an older MLflow.
        TrackingServerUnreachable: the tracking server does not answer.
        TrackingServerError: the tracking server answers with errors.
    """
    r = config.project_root() if root is None else Path(root)
    store_uri = config.tracking_uri(r)
    if scheme(store_uri) in _HTTP_SCHEMES:
        store_uri = _server.prepare(store_uri)
    mlflow = require_mlflow()
    mlflow.set_tracking_uri(store_uri)
    if store_uri in _initialised:
        return store_uri
    with _init_lock:  # threads of this process; the file lock covers other processes
        if store_uri not in _initialised:
            _initialise(store_uri, r)
            _initialised.add(store_uri)
    return store_uri


def _initialise(store_uri: str, root: Path) -> None:
    if scheme(store_uri) in _HTTP_SCHEMES:
        _server.probe(store_uri, root)
        return
    if is_served(store_uri):
        return  # databricks & co: credentials and reachability are MLflow's business
    if scheme(store_uri) == "sqlite":
        _check_sqlite_folder(store_uri, root)
    with _StoreLock(root):
        if scheme(store_uri) == "sqlite" and not Path(store_uri.split(":///", 1)[-1]).exists():
            with quiet_logging():  # MLflow's two INFO lines about its tables
                _create_sqlite_store(store_uri, root)
            # Shown where the program set logging up (dslc.get_logger does), but this
            # does not set it up: `mlflow` commands create the store here too.
            logging.getLogger("dslc.tracking").info("created the MLflow store %s", store_uri)
        _open_stores(store_uri, root)


def _create_sqlite_store(store_uri: str, root: Path) -> None:
    """Create the store with the project's artifact root for its Default experiment.

    MLflow would give that experiment (id 0, where runs without an experiment go)
    ``./mlruns`` of whatever folder first opened the store, e.g. ``notebooks/mlruns``.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(store_uri, config.artifact_root(root))


def _check_sqlite_folder(store_uri: str, root: Path) -> None:
    path = store_uri.split(":///", 1)[-1]
    if path and path != ":memory:":
        folder = Path(path).expanduser().parent
        if not folder.is_dir():
            raise StoreError(
                f"folder {folder} of the MLflow store {store_uri} does not exist; create it "
                f"or fix MLFLOW_TRACKING_URI in {root / '.env'}"
            )


def _open_stores(store_uri: str, root: Path) -> None:
    """Instantiate the tracking and registry stores (this runs MLflow's migrations)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store_uri)
    try:
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    except MlflowException as exc:
        if "out-of-date database schema" in str(exc):
            raise StoreError(
                f"MLflow store {store_uri} was made by an older MLflow; back it up, then run: "
                f"mlflow db upgrade {store_uri}"
            ) from exc
        raise StoreError(f"cannot open MLflow store {store_uri}: {first_line(exc)}") from exc
    except Exception as exc:  # SQLAlchemy/OS errors: say which store and where it is set
        raise StoreError(
            f"cannot open MLflow store {store_uri} ({type(exc).__name__}: {first_line(exc)}); "
            f"fix MLFLOW_TRACKING_URI in {root / '.env'} or remove it to use the default"
        ) from exc


def client(root: Path | None = None) -> MlflowClient:
    """Return an ``MlflowClient`` on the project's (initialised) store."""
    store_uri = ensure_store(root)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store_uri)


def default_experiment_name(root: Path) -> str:
    """``MLFLOW_EXPERIMENT_NAME`` when set, else the project name."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME", "").strip() or config.project_name(root)


def experiment_id(name: str | None, root: Path, store_uri: str) -> str:
    """Return the id of the run's experiment, creating it if needed.

    ``name`` None means: ``MLFLOW_EXPERIMENT_ID`` / ``MLFLOW_EXPERIMENT_NAME`` when set
    (``mlflow run`` sets the id), else the project name. A new experiment on a store that
    no server manages gets ``<root>/mlartifacts`` as artifact location, so artifacts never
    land under the working directory.
    """
    from mlflow.tracking import MlflowClient

    mlflow_client = MlflowClient(tracking_uri=store_uri)
    if name is None:
        env_id = os.environ.get("MLFLOW_EXPERIMENT_ID", "").strip()
        if env_id:
            return _check_experiment(mlflow_client.get_experiment(env_id), env_id, store_uri)
        name = default_experiment_name(root)
    exp = mlflow_client.get_experiment_by_name(name)
    if exp is None:
        exp = _create_experiment(mlflow_client, name, root, store_uri)
    return _check_experiment(exp, name, store_uri)


def _create_experiment(mlflow_client: MlflowClient, name: str, root: Path, store_uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    if is_served(store_uri):
        try:
            mlflow_client.create_experiment(name)
        except MlflowException as exc:  # created meanwhile by another client: fine
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise TrackingError(
                    f"cannot create experiment {name!r} on {store_uri}: {first_line(exc)}"
                ) from exc
        return mlflow_client.get_experiment_by_name(name)
    with _StoreLock(root):  # double-checked: another process may have just created it
        exp = mlflow_client.get_experiment_by_name(name)
        if exp is None:
            mlflow_client.create_experiment(name, artifact_location=config.artifact_root(root))
            exp = mlflow_client.get_experiment_by_name(name)
    return exp


def _check_experiment(exp: Any, ref: str, store_uri: str) -> str:
    if exp is None:
        raise TrackingError(
            f"experiment {ref!r} does not exist in {store_uri}; unset MLFLOW_EXPERIMENT_ID "
            "or pass experiment=<name>"
        )
    if exp.lifecycle_stage == "deleted":
        raise TrackingError(
            f"experiment {exp.name!r} is deleted in {store_uri}; restore it with "
            f"`mlflow experiments restore --experiment-id {exp.experiment_id}` or pass "
            "experiment=<another name>"
        )
    return str(exp.experiment_id)
