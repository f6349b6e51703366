"""Point the ``mlflow`` command at the project's tracking store, from any folder.

MLflow's command line knows nothing of projects: with no ``MLFLOW_TRACKING_URI`` it opens
``sqlite:///mlflow.db`` in the working directory, so ``mlflow experiments search`` run in
``notebooks/`` makes a second, empty store there, and ``mlflow ui`` from a subfolder shows
nothing. dslc ships ``dslc_mlflow.pth``, which Python runs at start-up in any environment
where dslc is installed; for the ``mlflow`` program only (``mlflow ...`` or
``python -m mlflow ...``), and only inside a dslc project, it calls :func:`apply`, which
exports the URI that dslc itself uses (``.env``'s ``MLFLOW_TRACKING_URI``, else the
embedded store at the project root). A URI already in the environment always wins.

Every other program pays one string test at start-up and imports nothing.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path

TRACKING = "MLFLOW_TRACKING_URI"
# `mlflow server` and `mlflow ui` do not read the tracking URI: they take these instead.
SERVER_STORE = "MLFLOW_BACKEND_STORE_URI"
SERVER_ARTIFACTS = "MLFLOW_DEFAULT_ARTIFACT_ROOT"
# Options by which a server command names a store of its own (a team server, a test):
# then the project's store and artifact root must not leak into it as defaults.
OWN_STORE_OPTIONS = ("--backend-store-uri", "--default-artifact-root", "--artifacts-destination")


def is_mlflow_command(argv: Sequence[str], orig_argv: Sequence[str]) -> bool:
    """True for the ``mlflow`` console script (any path, ``.exe`` too) or ``-m mlflow``."""
    program = re.split(r"[\\/]", argv[0])[-1].lower() if argv else ""
    return program in ("mlflow", "mlflow.exe") or list(orig_argv[1:3]) == ["-m", "mlflow"]


def apply(environ: MutableMapping[str, str] | None = None, argv: Sequence[str] = ()) -> str | None:
    """Export the project's tracking URI for an ``mlflow`` command; return it (or None).

    Does nothing when ``MLFLOW_TRACKING_URI`` is already set (an explicit choice) or when
    the working directory is in no dslc project. A missing embedded store is created
    here, by dslc, so that its Default experiment too keeps artifacts in
    ``<root>/mlartifacts`` whichever folder the command ran from.
    """
    from . import config
    from .errors import DslcError

    env = os.environ if environ is None else environ
    if env.get(TRACKING, "").strip():
        return None
    try:
        root = config.project_root()
        uri = config.tracking_uri(root)  # loads .env: server credentials come with it
    except DslcError:
        return None  # not in a project (or a broken one, which MLflow may not need)
    env[TRACKING] = uri
    own_store = any(arg.startswith(OWN_STORE_OPTIONS) for arg in argv) or any(
        env.get(name, "").strip() for name in (SERVER_STORE, "MLFLOW_ARTIFACTS_DESTINATION")
    )
    if uri.startswith("sqlite:") and not own_store:
        env.setdefault(SERVER_STORE, uri)
        env.setdefault(SERVER_ARTIFACTS, config.artifact_root(root))
        if not Path(uri.split(":///", 1)[-1]).exists():
            from .tracking import _store

            _store.ensure_store(root)
    return uri


def main() -> None:
    """The start-up hook: never let a problem here stop the ``mlflow`` command itself."""
    if not is_mlflow_command(sys.argv, getattr(sys, "orig_argv", [])):
        return
    try:
        apply(argv=sys.argv[1:])
    except Exception as exc:  # MLflow then runs with its own defaults, and says why
        from .tracking._errors import first_line  # scrubbed: the cause may hold a URL

        print(
            f"dslc: could not point mlflow at the project's store: {first_line(exc)}",
            file=sys.stderr,
        )
