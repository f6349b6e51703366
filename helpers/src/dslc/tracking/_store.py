"""The project's store: opened once under a file lock, and the experiment runs go to.

MLflow would open ``sqlite:///mlflow.db`` relative to the working directory, and parallel
first opens of a new SQLite store race in its migrations: dslc sets the URI explicitly and
opens a store first under ``<root>/.dslc/mlflow-store.lock``. A tracking server gets its
credentials moved out of the URI, bounded retries, and a probe that fails in seconds: it
asks a real API endpoint because ``/health`` answers even when the server's database is
down, and reads HTTP statuses itself because MLflow's client reports a 401 with a JSON
body like any other error.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import os
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

from .. import config
from .._state import state_dir
from ._errors import (
    StoreError,
    TrackingError,
    TrackingServerError,
    TrackingServerUnreachable,
    first_line,
    quiet_mlflow,
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

    lock = FileLock(str(state_dir(root) / LOCK_NAME), timeout=LOCK_TIMEOUT_S)
    try:
        held = lock.acquire()
    except Timeout as exc:
        raise StoreError(
            f"waited {LOCK_TIMEOUT_S:.0f} s for {lock.lock_file}: another process is still "
            "creating the MLflow store; wait for it or stop it, then retry"
        ) from exc
    with held:
        yield


def ensure_store(root: Path | None = None) -> str:
    """Point mlflow at the project's store and make sure it is usable; return its URI.

    Creates and migrates a database store on first use, under the file lock; probes an
    http(s) server. Cheap after the first call in a process.
    """
    r = config.project_root() if root is None else Path(root)
    store_uri = config.tracking_uri(r)
    http = scheme(store_uri) in ("http", "https")
    if http:
        store_uri = prepare_server(store_uri)
    require_mlflow().set_tracking_uri(store_uri)
    with _init_lock:  # threads of this process; the file lock covers other processes
        if store_uri not in _initialised:
            if http:
                probe(store_uri, r)
            elif not is_served(store_uri):  # databricks & co: MLflow's business
                _open(store_uri, r)
            _initialised.add(store_uri)
    return store_uri


def _open(store_uri: str, root: Path) -> None:
    """Open the tracking and registry stores (this creates and migrates a new one)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    path = store_uri.split(":///", 1)[-1] if scheme(store_uri) == "sqlite" else ""
    new = bool(path) and not Path(path).exists()
    try:
        with store_lock(root), quiet_mlflow():  # MLflow's INFO lines about its tables
            client = MlflowClient(tracking_uri=store_uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
    except MlflowException as exc:  # an old schema: MLflow's line says `mlflow db upgrade`
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
    (``mlflow run`` sets the id), else the project name. Without a server, a new
    experiment keeps its artifacts in ``<root>/mlartifacts``, not the working directory.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow_client = MlflowClient(tracking_uri=store_uri)
    env_id = os.environ.get("MLFLOW_EXPERIMENT_ID", "").strip() if name is None else ""
    if env_id:
        return _checked(mlflow_client.get_experiment(env_id), env_id, store_uri)
    name = name or default_experiment_name(root)
    exp = mlflow_client.get_experiment_by_name(name)
    if exp is None:
        location = None if is_served(store_uri) else config.artifact_root(root)
        try:  # the lock keeps the project's processes from racing on a SQLite store
            with store_lock(root):
                mlflow_client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:  # created meanwhile by another client: fine
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise TrackingError(
                    f"cannot create experiment {name!r} on {store_uri}: {first_line(exc)}"
                ) from exc
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


# MLflow's HTTP settings dslc sets unless the environment (or .env) has them: at most 3
# retries, waiting 0, 2 and 4 seconds (plus jitter), a request timing out after 30 s.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
PROBE_TIMEOUT_S = 5.0
# The probe's own retries of transient failures: waits between its 4 attempts.
PROBE_BACKOFF_S = (0.5, 1.0, 2.0)
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
API_PATH = "/api/2.0/mlflow/experiments/search?max_results=1"


def prepare_server(store_uri: str) -> str:
    """Bound MLflow's retries, move credentials out of the URI; returns the clean URI."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    parts = urlsplit(store_uri)
    if "@" not in parts.netloc:
        return store_uri
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    if user:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(user))
    if password:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(password))
    return urlunsplit(parts._replace(netloc=host))


def probe(store_uri: str, root: Path) -> None:
    """Check within seconds that the server answers, and that its API works."""
    base, env_file = store_uri.rstrip("/"), root / ".env"
    for path in ("/health", API_PATH):
        status = _get(base, path, env_file)
        where = f"MLflow tracking server {base}"
        if status in (401, 403) and path == API_PATH:
            raise TrackingError(
                f"{where} refused the credentials (HTTP {status}); set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or user:password in "
                f"MLFLOW_TRACKING_URI) in {env_file}"
            )
        if status == 404 and path == API_PATH:
            raise TrackingServerError(
                f"{base} does not look like an MLflow tracking server (HTTP 404 on "
                f"{API_PATH.split('?')[0]}); fix MLFLOW_TRACKING_URI in {env_file}"
            )
        if status is not None and status >= 500:
            raise TrackingServerError(
                f"{where} answers but fails: GET {path.split('?')[0]} gave HTTP {status} "
                f"{http.client.responses.get(status, '')} {len(PROBE_BACKOFF_S) + 1} times; "
                f"look at the server's log (is its database up?), or fix MLFLOW_TRACKING_URI "
                f"in {env_file}"
            )


def _get(base: str, path: str, env_file: Path) -> int | None:
    """HTTP status of GET ``path`` (None for a 2xx), retrying transient failures."""
    request = urllib.request.Request(base + path, headers=_auth_headers())
    outcome: int | Exception | None = None
    for pause in (*PROBE_BACKOFF_S, None):
        try:
            with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S, context=_tls()):
                return None
        except urllib.error.HTTPError as exc:  # before URLError, its base class
            outcome = exc.code
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            outcome = exc
        if pause is None or (isinstance(outcome, int) and outcome not in TRANSIENT_STATUS):
            break
        time.sleep(pause)
    if isinstance(outcome, Exception):
        raise TrackingServerUnreachable(
            f"MLflow tracking server {base} does not answer "
            f"({getattr(outcome, 'reason', outcome)}; tried {len(PROBE_BACKOFF_S) + 1} times); "
            f"start it (mlflow server ...) or fix MLFLOW_TRACKING_URI in {env_file}"
        ) from outcome
    return outcome


def _auth_headers() -> dict[str, str]:
    """The credentials MLflow itself would send (a token, else user and password)."""
    if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return {"Authorization": f"Bearer {token}"}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if not (user or password):
        return {}
    return {
        "Authorization": "Basic "
        + base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
    }


def _tls() -> ssl.SSLContext | None:
    """Honour MLflow's TLS variables: a custom CA bundle, or no verification at all."""
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        insecure = ssl.create_default_context()
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
        return insecure
    cert = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    return ssl.create_default_context(cafile=cert) if cert else None
