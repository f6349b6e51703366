"""The project's store, opened once under ``<root>/.dslc/mlflow-store.lock`` (parallel
first opens of a new SQLite store race in MLflow's migrations), and the experiment runs
go to. A tracking server is probed first so that a dead one fails in seconds."""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

from .. import config
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

# Generous: a first migration of a SQLite store takes a few seconds, a slow disk more.
LOCK_TIMEOUT_S = 300.0
_SERVED_SCHEMES = frozenset({"http", "https", "databricks", "databricks-uc", "uc"})

# Store URIs already opened (migrated, reachable) by this process: later runs skip the lock.
_initialised: set[str] = set()
_init_lock = threading.Lock()


def sqlite_path(store_uri: str) -> str:
    """The database file of a ``sqlite:///`` store, "" for any other store."""
    return store_uri.split(":///", 1)[-1].split("?")[0] if scheme(store_uri) == "sqlite" else ""


def scheme(store_uri: str) -> str:
    return urlparse(store_uri).scheme.lower()


def is_served(store_uri: str) -> bool:
    """True when a tracking server (not this process) decides where artifacts go."""
    return scheme(store_uri) in _SERVED_SCHEMES or store_uri in _SERVED_SCHEMES


@contextlib.contextmanager
def store_lock(root: Path) -> Iterator[None]:
    """The project's store lock, with a one-line error when waiting for it times out."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(config.state_dir(root) / "mlflow-store.lock"), timeout=LOCK_TIMEOUT_S)
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
    """Point mlflow at the project's store, created or probed on first use; return its URI."""
    r = config.project_root() if root is None else Path(root)
    store_uri = config.tracking_uri(r)
    if http := scheme(store_uri) in ("http", "https"):
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

    path = sqlite_path(store_uri)
    new = bool(path) and not Path(path).exists()
    fix = f"fix MLFLOW_TRACKING_URI in {root / '.env'} or remove it to use the default"
    if path and not new and not Path(path).is_file():  # SQLite would wait on a FIFO for ever
        raise StoreError(
            f"cannot open MLflow store {store_uri}: {path} is not a regular file; {fix}"
        )
    try:
        with store_lock(root), quiet_mlflow():  # MLflow's INFO lines about its tables
            client = MlflowClient(tracking_uri=store_uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
    except (MlflowException, StoreError) as exc:  # an old schema: says `mlflow db upgrade`
        raise StoreError(f"cannot open MLflow store {store_uri}: {first_line(exc)}") from exc
    except Exception as exc:  # SQLAlchemy/OS errors: say which store and where it is set
        raise StoreError(
            f"cannot open MLflow store {store_uri} ({type(exc).__name__}: {first_line(exc)}); {fix}"
        ) from exc
    if new:  # shown where the program set logging up (dslc.get_logger does)
        logging.getLogger("dslc.tracking").info("created the MLflow store %s", store_uri)


def client(root: Path | None = None) -> MlflowClient:
    """An ``MlflowClient`` on the project's (initialised) store."""
    store_uri = ensure_store(root)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store_uri)


def find_experiment(store: MlflowClient, name: str | None, root: Path) -> tuple[Any, str]:
    """The experiment runs go to (None if it does not exist yet) and its id or name."""
    if name is None and (env_id := os.environ.get("MLFLOW_EXPERIMENT_ID", "").strip()):
        return store.get_experiment(env_id), env_id
    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME", "").strip() or config.project_name(root)
    return store.get_experiment_by_name(name), name


# MLflow's UI opens an experiment of this kind on its training runs, not on the GenAI
# overview ("Traces 0 ... No data available") it shows an experiment of no known kind.
KIND = {"mlflow.experimentKind": "custom_model_development"}


def experiment_id(store: MlflowClient, name: str | None, root: Path) -> str:
    """The run's experiment id, made if needed (artifacts in <root>/mlartifacts if not served)."""
    from mlflow.exceptions import MlflowException

    store_uri = store.tracking_uri
    try:
        exp, ref = find_experiment(store, name, root)
    except MlflowException as exc:  # MLFLOW_EXPERIMENT_ID names no experiment
        raise TrackingError(
            f"{first_line(exc)} in {store_uri}; unset MLFLOW_EXPERIMENT_ID or pass "
            "experiment=<name>"
        ) from exc
    if exp is None:
        location = None if is_served(store_uri) else config.artifact_root(root)
        try:  # the lock keeps the project's processes from racing on a SQLite store
            with store_lock(root):
                store.create_experiment(ref, artifact_location=location, tags=KIND)
        except MlflowException as exc:  # created meanwhile by another client: fine
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise TrackingError(
                    f"cannot create experiment {ref!r} on {store_uri}: {first_line(exc)}"
                ) from exc
        exp = store.get_experiment_by_name(ref)
    if exp.lifecycle_stage == "deleted":
        raise TrackingError(
            f"experiment {exp.name!r} is deleted in {store_uri}; restore it with "
            f"`mlflow experiments restore --experiment-id {exp.experiment_id}` or pass "
            "experiment=<another name>"
        )
    return str(exp.experiment_id)


# MLflow's HTTP settings unless set: 3 retries after 0, 2, 4 s (plus jitter), 30 s per request.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
PROBE_TIMEOUT_S = 5.0
# The probe tries 4 times, waiting 0, 0.5 and 1 s between attempts, on these failures.
PROBE_ATTEMPTS = 4
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
API_PATH = "/api/2.0/mlflow/experiments/search?max_results=1"


def prepare_server(store_uri: str) -> str:
    """Bound MLflow's retries, move credentials out of the URI; returns the clean URI."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    parts = urlsplit(store_uri)
    if "@" not in parts.netloc:
        return store_uri
    if parts.username:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(parts.username))
    if parts.password:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(parts.password))
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def probe(store_uri: str, root: Path) -> None:
    """Check in seconds that the server and its API answer, as MLflow's client would (auth, TLS)."""
    import requests
    from urllib3.util import Retry

    base, env_file = store_uri.rstrip("/"), root / ".env"
    where, fix = f"MLflow tracking server {base}", f"fix MLFLOW_TRACKING_URI in {env_file}"
    retry = Retry(
        total=PROBE_ATTEMPTS - 1,
        backoff_factor=0.25,
        status_forcelist=TRANSIENT_STATUS,
        raise_on_status=False,
        respect_retry_after_header=False,  # a server asking for minutes would hang the run
    )
    with requests.Session() as session:
        session.mount(base, requests.adapters.HTTPAdapter(max_retries=retry))
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
        if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
            session.headers["Authorization"] = f"Bearer {token}"
        elif user or password:
            session.auth = requests.auth.HTTPBasicAuth(user.encode(), password.encode())
        if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
            session.verify = False
        elif cert := os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            session.verify = cert
        for path in ("/health", API_PATH):
            try:
                status = session.get(base + path, timeout=PROBE_TIMEOUT_S).status_code
            except requests.RequestException as exc:
                raise TrackingServerUnreachable(
                    f"{where} does not answer ({_root_cause(exc)}; tried {PROBE_ATTEMPTS} "
                    f"times); start it (mlflow server ...) or {fix}"
                ) from exc
            if status in (401, 403) and path == API_PATH:
                raise TrackingError(
                    f"{where} refused the credentials (HTTP {status}); set "
                    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or user:password "
                    f"in MLFLOW_TRACKING_URI) in {env_file}"
                )
            if status == 404 and path == API_PATH:
                raise TrackingServerError(
                    f"{base} does not look like an MLflow tracking server (HTTP 404 on "
                    f"{API_PATH.split('?')[0]}); {fix}"
                )
            if status >= 500:
                raise TrackingServerError(
                    f"{where} answers but fails: GET {path.split('?')[0]} gave HTTP {status} "
                    f"{http.client.responses.get(status, '')} {PROBE_ATTEMPTS} times; look at "
                    f"the server's log (is its database up?), or {fix}"
                )


def _root_cause(exc: BaseException) -> BaseException:
    """The first exception of a chain: the OS's reason under urllib3's and requests'."""
    while isinstance(
        cause := exc.__cause__ or exc.__context__ or getattr(exc, "reason", None), BaseException
    ):
        exc = cause
    return exc
