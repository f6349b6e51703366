"""The project's store: opened once under a file lock, and the experiment runs go to.

MLflow would open ``sqlite:///mlflow.db`` relative to the working directory, and parallel
first opens of a new SQLite store race in its migrations: dslc sets the URI explicitly and
opens a store first under ``<root>/.dslc/mlflow-store.lock``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .. import config
from . import _server
from ._errors import (
    StoreError,
    TrackingError,
    first_line,
    quiet_logging,
    require_mlflow,
)

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

LOCK_NAME = "mlflow-store.lock"
# Generous: a first migration of a SQLite store takes a few seconds, a slow disk more.
LOCK_TIMEOUT_S = 300.0
_SERVED_SCHEMES = frozenset({"http", "https", "databricks", "databricks-uc", "uc"})

# Store URIs already opened (migrated, reachable) by this process: later runs skip the lock.
_initialised: set[str] = set()
_init_lock = threading.Lock()


def scheme(store_uri: str) -> str:
    """Return the URI scheme, lower-case (``"sqlite"``, ``"http"``...; ``""`` for a path)."""
    return urlparse(store_uri).scheme.lower()


def is_served(store_uri: str) -> bool:
    """True when a tracking server (not this process) decides where artifacts go."""
    return scheme(store_uri) in _SERVED_SCHEMES or store_uri in _SERVED_SCHEMES


@contextlib.contextmanager
def store_lock(root: Path) -> Iterator[None]:
    """The project's store lock, with a one-line error when waiting for it times out."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(config.state_dir(root) / LOCK_NAME), timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout as exc:
        raise StoreError(
            f"waited {LOCK_TIMEOUT_S:.0f} s for {lock.lock_file}: another process is still "
            "creating the MLflow store; wait for it or stop it, then retry"
        ) from exc
    try:
        yield
    finally:
        lock.release()


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
    http = scheme(store_uri) in ("http", "https")
    if http:
        store_uri = _server.prepare(store_uri)
    require_mlflow().set_tracking_uri(store_uri)
    with _init_lock:  # threads of this process; the file lock covers other processes
        if store_uri not in _initialised:
            if http:
                _server.probe(store_uri, r)
            elif not is_served(store_uri):  # databricks & co: MLflow's business
                _open(store_uri, r)
            _initialised.add(store_uri)
    return store_uri


def _open(store_uri: str, root: Path) -> None:
    """Open the tracking and registry stores (this creates and migrates a new one)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    path = store_uri.split(":///", 1)[-1] if scheme(store_uri) == "sqlite" else ""
    if path and path != ":memory:" and not Path(path).expanduser().parent.is_dir():
        raise StoreError(
            f"folder {Path(path).expanduser().parent} of the MLflow store {store_uri} does "
            f"not exist; create it or fix MLFLOW_TRACKING_URI in {root / '.env'}"
        )
    new = bool(path) and not Path(path).exists()
    try:
        with store_lock(root), quiet_logging():  # MLflow's INFO lines about its tables
            client = MlflowClient(tracking_uri=store_uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
    except MlflowException as exc:
        if "out-of-date database schema" in str(exc):
            raise StoreError(
                f"MLflow store {store_uri} was made by an older MLflow; back it up, then run: "
                f"mlflow db upgrade {store_uri}"
            ) from exc
        raise StoreError(f"cannot open MLflow store {store_uri}: {first_line(exc)}") from exc
    except TrackingError:
        raise
    except Exception as exc:  # SQLAlchemy/OS errors: say which store and where it is set
        raise StoreError(
            f"cannot open MLflow store {store_uri} ({type(exc).__name__}: {first_line(exc)}); "
            f"fix MLFLOW_TRACKING_URI in {root / '.env'} or remove it to use the default"
        ) from exc
    if new:  # shown where the program set logging up (dslc.get_logger does)
        logging.getLogger("dslc.tracking").info("created the MLflow store %s", store_uri)


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
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow_client = MlflowClient(tracking_uri=store_uri)
    env_id = os.environ.get("MLFLOW_EXPERIMENT_ID", "").strip() if name is None else ""
    if env_id:
        return _checked(mlflow_client.get_experiment(env_id), env_id, store_uri)
    name = name or default_experiment_name(root)
    exp = mlflow_client.get_experiment_by_name(name)
    if exp is None and is_served(store_uri):
        try:
            mlflow_client.create_experiment(name)
        except MlflowException as exc:  # created meanwhile by another client: fine
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise TrackingError(
                    f"cannot create experiment {name!r} on {store_uri}: {first_line(exc)}"
                ) from exc
        exp = mlflow_client.get_experiment_by_name(name)
    elif exp is None:
        with store_lock(root):  # double-checked: another process may have just created it
            if mlflow_client.get_experiment_by_name(name) is None:
                mlflow_client.create_experiment(name, artifact_location=config.artifact_root(root))
        exp = mlflow_client.get_experiment_by_name(name)
    return _checked(exp, name, store_uri)


def _checked(exp: Any, ref: str, store_uri: str) -> str:
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
