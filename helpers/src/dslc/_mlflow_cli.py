"""MLflow's own command line, run for the project: ``dslc mlflow``, ``dslc ui``.

With no ``MLFLOW_TRACKING_URI`` MLflow opens ``sqlite:///mlflow.db`` in the working
directory, so ``mlflow experiments search`` in ``notebooks/`` would make a second, empty
store there. ``dslc mlflow ARGS...`` runs ``python -m mlflow ARGS...`` of dslc's own
environment with the URI dslc uses (``.env`` of the project root, else the embedded store
at the root); nothing of dslc runs when ``mlflow`` is started directly.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import config
from .errors import DslcError

TRACKING = "MLFLOW_TRACKING_URI"
# `mlflow server` and `mlflow ui` do not read the tracking URI: they take these instead.
STORE, ARTIFACTS = "MLFLOW_BACKEND_STORE_URI", "MLFLOW_DEFAULT_ARTIFACT_ROOT"
# Options by which a server command names a store of its own (a team server, a test):
# then the project's store and artifact root must not leak into it as defaults.
OWN_STORE_OPTIONS = ("--backend-store-uri", "--default-artifact-root", "--artifacts-destination")


def export_project_store(argv: Sequence[str]) -> str:
    """Set the project's tracking URI (and store) in ``os.environ``; return the URI.

    A value already in the environment wins over ``.env`` and the default. A missing
    embedded store is created here, by dslc, so that its Default experiment keeps
    artifacts in ``<root>/mlartifacts`` whichever folder the command runs from.

    Raises:
        ProjectNotFoundError: the working directory is in no dslc project.
    """
    root = config.project_root()
    uri = os.environ[TRACKING] = config.tracking_uri(root)  # loads .env, credentials too
    own_store = any(arg.startswith(OWN_STORE_OPTIONS) for arg in argv) or any(
        os.environ.get(name, "").strip() for name in (STORE, "MLFLOW_ARTIFACTS_DESTINATION")
    )
    if uri.startswith("sqlite:") and not own_store:
        os.environ.setdefault(STORE, uri)
        os.environ.setdefault(ARTIFACTS, config.artifact_root(root))
        if not Path(uri.split(":///", 1)[-1]).exists():
            from .tracking import ensure_store

            ensure_store(root)
    return uri


def ui(store: str, host: str, port: int) -> int:
    """``mlflow ui`` on ``store``: one worker, no GenAI job runner (a local UI needs neither).

    With MLflow's defaults (4 workers, a job runner) the UI took 35-44 s to come up on
    2 cores: each process imports the server again.
    """
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    # The store by environment, not by option: a database URL's password stays out of `ps`.
    env |= {STORE: store, ARTIFACTS: config.artifact_root()}
    # mlflow's app imports Starlette's deprecated WSGI module: a note for mlflow's
    # maintainers, printed on every start. Only that message is silenced.
    quiet = "ignore:starlette.middleware.wsgi is deprecated"
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"), quiet]))
    return run(["ui", "--host", host, "--port", str(port), "--workers", "1"], env)


def run(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> int:
    """Run ``python -m mlflow ARGS...`` of this environment; its exit status is the command's.

    On POSIX MLflow replaces this process, so signals (Ctrl-C, a service manager's
    SIGTERM) reach it directly.
    """
    if importlib.util.find_spec("mlflow") is None:
        raise DslcError("mlflow is not installed; install it with: pip install 'dslc[tracking]'")
    command = [sys.executable, "-m", "mlflow", *argv]
    # MLflow starts helper programs (uvicorn) by name: this environment's come first.
    path = os.pathsep.join([str(Path(sys.executable).parent), environ.get("PATH", "")])
    env = {**environ, "PATH": path}
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":  # pragma: no cover - Windows' exec would lose the exit status
        return subprocess.call(command, env=env)
    os.execve(sys.executable, command, env)
    return 0  # only when exec is replaced (tests)
