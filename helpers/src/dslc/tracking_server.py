"""``dslc tracking-server``: the team's MLflow server, its database and artifacts set in .env.

``mlflow server`` itself is a poor first contact with a wrong setting: a wrong database
URL or password makes it retry for two minutes, then print a traceback, and a URL on its
command line (``--backend-store-uri``) shows the password to anyone running ``ps``. So:

* settings come from the environment and the project's ``.env`` (the environment wins),
  and each missing or malformed one is a one-line error naming the variable;
* the database is checked first, with a connect timeout, so a wrong URL, password, host
  or database name fails in seconds, in one line without credentials;
* the URL reaches MLflow through its environment (``MLFLOW_BACKEND_STORE_URI``), never on a
  command line; ``--serve-artifacts`` proxies artifacts into
  ``MLFLOW_ARTIFACTS_DESTINATION``, so clients need no access of their own to it;
* one worker per core (MLflow's default is 4) and no job runner, whose eight more
  processes, each loading MLflow, serve only GenAI features (scorers, evaluations,
  prompt optimization, trace archival). ``MLFLOW_WORKERS`` and
  ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION`` change that.

SQLAlchemy (which MLflow brings) is imported only when the command runs.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config
from .errors import ConfigError, DslcError

DATABASE_URL = "MLFLOW_DATABASE_URL"
DATABASE_PASSWORD = "MLFLOW_DATABASE_PASSWORD"
DESTINATION = "MLFLOW_ARTIFACTS_DESTINATION"
HOST, PORT, WORKERS = "MLFLOW_HOST", "MLFLOW_PORT", "MLFLOW_WORKERS"
JOBS = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
STORE = "MLFLOW_BACKEND_STORE_URI"  # where `mlflow server` reads its store from
CONNECT_TIMEOUT_S = 10
EXAMPLE_URL = "postgresql+psycopg://USER@HOST:5432/DATABASE"
TIMEOUT_BACKENDS = ("postgresql", "mysql", "mariadb")  # drivers taking connect_timeout


class ServerSetupError(ConfigError):
    """A setting of the tracking server is missing or wrong, or its database refuses."""


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
    """The cores this process may use (its CPU affinity), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1  # pragma: no cover - macOS and Windows


def _whole(name: str, text: str, low: int, high: int) -> int:
    value = int(text) if text.strip().isdigit() else -1
    if not low <= value <= high:
        raise ServerSetupError(
            f"{name}={text!r} is not a whole number from {low} to {high}; fix it in .env"
        )
    return value


def plan(
    root: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
) -> Plan:
    """Read and check the settings (arguments win over the environment and ``.env``).

    Raises:
        ServerSetupError: a setting is missing or malformed; the message names it.
        DslcError: MLflow is not installed.
    """
    r = config.project_root() if root is None else root
    config.load_env(r)
    env = os.environ
    url_text = env.get(DATABASE_URL, "").strip()
    if not url_text:
        raise ServerSetupError(
            f"{DATABASE_URL} is not set: add {DATABASE_URL}={EXAMPLE_URL} and "
            f"{DATABASE_PASSWORD}=... to .env (see the README)"
        )
    destination = env.get(DESTINATION, "").strip()
    if not destination:
        raise ServerSetupError(
            f"{DESTINATION} is not set: add the folder or bucket for artifacts to .env, "
            f"e.g. {DESTINATION}=s3://team-bucket/mlflow"
        )
    if "://" not in destination and not Path(destination).is_absolute():
        destination = str(r / destination)  # a folder relative to the project root
    if importlib.util.find_spec("mlflow") is None:
        raise DslcError("mlflow is not installed; install it with: uv add 'dslc[tracking]'")
    from sqlalchemy import exc
    from sqlalchemy.engine import make_url

    try:
        url = make_url(url_text)
    except (exc.ArgumentError, ValueError, TypeError):
        raise ServerSetupError(
            f"{DATABASE_URL} in .env is not a database URL: write it as {EXAMPLE_URL}"
        ) from None
    if url.drivername in ("postgres", "postgresql"):
        raise ServerSetupError(
            f"{DATABASE_URL} in .env must start with postgresql+psycopg:// (psycopg is the "
            "driver of the server dependency group)"
        )
    password = env.get(DATABASE_PASSWORD, "")
    if password:
        url = url.set(password=password)
    return Plan(
        url=url,
        shown=url.render_as_string(hide_password=True),
        destination=destination,
        host=host or env.get(HOST, "").strip() or "127.0.0.1",
        port=port or _whole(PORT, env.get(PORT, "").strip() or "5000", 1, 65535),
        workers=workers or _whole(WORKERS, env.get(WORKERS, "").strip() or str(cores()), 1, 64),
    )


def check_database(p: Plan) -> None:
    """Connect once, giving up after :data:`CONNECT_TIMEOUT_S` seconds.

    Raises:
        ServerSetupError: no driver, or the database refuses or does not answer; one line,
            the password masked.
    """
    from sqlalchemy import create_engine, exc

    from .sql import driver_hint

    backend = p.url.get_backend_name()
    timeout = {"connect_timeout": CONNECT_TIMEOUT_S} if backend in TIMEOUT_BACKENDS else {}
    try:
        engine = create_engine(p.url, connect_args=timeout)
        try:
            engine.connect().close()
        finally:
            engine.dispose()
    except (ImportError, exc.NoSuchModuleError) as error:
        hint = driver_hint(p.url.drivername).replace("uv add ", "uv add --group server ", 1)
        raise ServerSetupError(
            f"no driver for {p.url.drivername} ({error}); add it: {hint}"
        ) from None
    except exc.DBAPIError as error:
        reason = " ".join(str(error.orig).split())
        if p.url.password:
            reason = reason.replace(str(p.url.password), "***")
        raise ServerSetupError(
            f"cannot connect to the MLflow database {p.shown} ({DATABASE_URL} in .env): {reason}"
        ) from None


def environment(p: Plan) -> dict[str, str]:
    """The variables ``mlflow server`` gets on top of this process's environment."""
    return {
        STORE: p.url.render_as_string(hide_password=False),
        DESTINATION: p.destination,
        HOST: p.host,
        PORT: str(p.port),
        WORKERS: str(p.workers),
        JOBS: os.environ.get(JOBS, "").strip() or "false",
    }


def command() -> list[str]:
    """The ``mlflow server`` command line: no URL, no password (they go by environment)."""
    return [sys.executable, "-m", "mlflow", "server", "--serve-artifacts"]


def run(p: Plan) -> None:
    """Replace this process by ``mlflow server`` (a service manager then sees MLflow)."""
    os.environ.update(environment(p))
    print(
        f"MLflow tracking server on {p.host}:{p.port} ({p.workers} worker(s)): runs in "
        f"{p.shown}, artifacts in {p.destination}",
        file=sys.stderr,
        flush=True,
    )
    args = command()
    os.execv(args[0], args)
