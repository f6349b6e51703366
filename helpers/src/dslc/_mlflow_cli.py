"""MLflow's own command line, run for the project: ``dslc mlflow``, ``ui``, ``tracking-server``.

Outside dslc, MLflow opens ``sqlite:///mlflow.db`` in the working directory: a second,
empty store in ``notebooks/``. Database URLs go to MLflow by environment: a password on a
command line shows in ``ps`` (rules: helpers/README.md, Command line).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config
from ._secrets import scrub
from .errors import ConfigError, DslcError

TRACKING = "MLFLOW_TRACKING_URI"
# `mlflow server` and `mlflow ui` do not read the tracking URI: they take these instead.
STORE, ARTIFACTS = "MLFLOW_BACKEND_STORE_URI", "MLFLOW_DEFAULT_ARTIFACT_ROOT"
# Options by which a server command names a store of its own (a team server, a test):
# then the project's store and artifact root must not leak into it as defaults.
OWN_STORE_OPTIONS = ("--backend-store-uri", "--default-artifact-root", "--artifacts-destination")
DATABASE_URL = "MLFLOW_DATABASE_URL"
DATABASE_PASSWORD = "MLFLOW_DATABASE_PASSWORD"
DESTINATION = "MLFLOW_ARTIFACTS_DESTINATION"
HOST, PORT, WORKERS = "MLFLOW_HOST", "MLFLOW_PORT", "MLFLOW_WORKERS"
JOBS = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
EXAMPLE_URL = "postgresql+psycopg://USER@HOST:5432/DATABASE"


def export_project_store(argv: Sequence[str]) -> None:
    """Set the project's tracking URI (and store) in ``os.environ``. A missing embedded store
    is made by dslc, so its Default experiment keeps artifacts in ``<root>/mlartifacts``
    whichever folder the command runs from."""
    root = config.project_root()
    uri = os.environ[TRACKING] = config.tracking_uri(root)  # loads .env, credentials too
    own_store = any(arg.startswith(OWN_STORE_OPTIONS) for arg in argv)
    own_store = own_store or any(map(_setting, (STORE, DESTINATION)))
    if uri.startswith("sqlite:") and not own_store:
        os.environ.setdefault(STORE, uri)
        os.environ.setdefault(ARTIFACTS, config.artifact_root(root))
        if not Path(uri.split(":///", 1)[-1]).exists():
            from .tracking import ensure_store

            ensure_store(root)


def ui(store: str, host: str, port: int) -> int:
    """``mlflow ui`` on ``store``: one worker, no GenAI job runner. With MLflow's defaults
    (4 workers, a job runner) it took 35-44 s to come up on 2 cores."""
    # The store by environment, not by option: a database URL's password stays out of `ps`.
    env = {JOBS: "false", **os.environ, STORE: store, ARTIFACTS: config.artifact_root()}
    # mlflow's app imports Starlette's deprecated WSGI module: a note for mlflow's
    # maintainers, printed on every start. Only that message is silenced.
    quiet = "ignore:starlette.middleware.wsgi is deprecated"
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"), quiet]))
    return run(["ui", "--host", host, "--port", str(port), "--workers", "1"], env)


def _require_mlflow() -> None:
    if importlib.util.find_spec("mlflow") is None:
        raise DslcError("mlflow is not installed; install it with: pip install 'dslc[tracking]'")


def run(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> int:
    """Run ``python -m mlflow ARGS...`` of this environment. On POSIX MLflow replaces this
    process, so signals (Ctrl-C, a service manager's SIGTERM) reach it directly."""
    _require_mlflow()
    command = [sys.executable, "-m", "mlflow", *argv]
    # `mlflow models serve` starts `uvicorn` by name: this environment's comes first.
    path = os.pathsep.join([str(Path(sys.executable).parent), environ.get("PATH", "")])
    env = {**environ, "PATH": path}
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":  # pragma: no cover - Windows' exec would lose the exit status
        return subprocess.call(command, env=env)
    os.execve(sys.executable, command, env)
    return 0  # only when exec is replaced (tests)


@dataclass(frozen=True)
class Plan:
    """What the server will run with. ``url`` holds the password: never print it."""

    url: Any = field(repr=False)  # a SQLAlchemy URL, password included
    shown: str  # the URL with the password masked
    destination: str
    host: str
    port: int
    workers: int


def cores() -> int:
    """The cores this process may use (its CPU affinity; all of them on macOS, Windows)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _setting(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def _whole(name: str, default: str, high: int) -> int:
    text = _setting(name, default)
    # ASCII digits only: int() also takes Arabic-Indic digits, isdigit() passes "\u00b2".
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= high):
        raise ConfigError(f"{name}={text!r} is not a whole number from 1 to {high}; fix it in .env")
    return int(text)


def plan(host: str | None = None, port: int | None = None, workers: int | None = None) -> Plan:
    """The checked settings: arguments win over the environment and ``.env``."""
    root = config.project_root()
    config.load_env(root)
    if not (url_text := _setting(DATABASE_URL)):
        raise ConfigError(
            f"{DATABASE_URL} is not set: add it to .env as {EXAMPLE_URL}, and the password "
            f"as {DATABASE_PASSWORD} (see the README)"
        )
    if not (destination := _setting(DESTINATION)):
        raise ConfigError(
            f"{DESTINATION} is not set: add the folder or bucket for artifacts to .env, "
            f"e.g. {DESTINATION}=s3://team-bucket/mlflow"
        )
    if "://" not in destination and not Path(destination).is_absolute():
        destination = str(root / destination)  # a folder relative to the project root
    _require_mlflow()  # it brings SQLAlchemy
    from sqlalchemy import exc
    from sqlalchemy.engine import make_url

    try:
        url = make_url(url_text)
    except (exc.ArgumentError, ValueError, TypeError):
        raise ConfigError(
            f"{DATABASE_URL} in .env is not a database URL: write it as {EXAMPLE_URL}"
        ) from None
    if url.drivername in ("postgres", "postgresql"):
        raise ConfigError(
            f"{DATABASE_URL} in .env must start with postgresql+psycopg:// (psycopg is the "
            "driver of the server dependency group)"
        )
    if password := os.environ.get(DATABASE_PASSWORD, ""):
        url = url.set(password=password)
    if not host:  # an argument was checked by the command line
        host = _setting(HOST, "127.0.0.1")
        if any(ord(ch) <= 32 or ch in "/?#@" for ch in host):
            raise ConfigError(f"{HOST}={host!r} is not a host name or address; fix it in .env")
    return Plan(
        url=url,
        shown=scrub(url.render_as_string(hide_password=True)),  # ?password=... too
        destination=destination,
        host=host,
        port=port or _whole(PORT, "5000", 65535),
        workers=workers or _whole(WORKERS, str(cores()), 64),
    )


def check_database(p: Plan) -> None:
    """Connect once, giving up after ``_sql.CONNECT_TIMEOUT_S`` seconds; ConfigError
    (one line, the password masked) when there is no driver or the database refuses."""
    from sqlalchemy import NullPool, create_engine, exc

    from ._sql import CONNECT_TIMEOUT_S, driver_hint

    takes_timeout = p.url.get_backend_name() in ("postgresql", "mysql", "mariadb")
    timeout = {"connect_timeout": CONNECT_TIMEOUT_S} if takes_timeout else {}
    try:  # NullPool: close() closes the connection itself, no pool is left to dispose of
        create_engine(p.url, connect_args=timeout, poolclass=NullPool).connect().close()
    except (ImportError, exc.NoSuchModuleError) as error:
        hint = driver_hint(p.url.drivername).replace("uv add ", "uv add --group server ", 1)
        raise ConfigError(f"no driver for {p.url.drivername} ({error}); add it: {hint}") from None
    except exc.DBAPIError as error:  # ConfigError folds the driver's lines into one
        reason = str(error.orig)
        reason = reason.replace(str(p.url.password), "***") if p.url.password else reason
        raise ConfigError(
            f"cannot connect to the MLflow database {p.shown} ({DATABASE_URL} in .env): {reason}"
        ) from None


def serve(p: Plan) -> int:
    """Replace this process by ``mlflow server`` (a service manager then sees MLflow)."""
    workers = f"{p.workers} worker(s)"
    where = f"runs in {p.shown}, artifacts in {p.destination}"
    print(f"MLflow tracking server on {p.host}:{p.port} ({workers}): {where}", file=sys.stderr)
    env = {
        **os.environ,
        STORE: p.url.render_as_string(hide_password=False),
        DESTINATION: p.destination,
        HOST: p.host,
        PORT: str(p.port),
        WORKERS: str(p.workers),
        JOBS: _setting(JOBS, "false"),
    }
    return run(["server", "--serve-artifacts"], env)
