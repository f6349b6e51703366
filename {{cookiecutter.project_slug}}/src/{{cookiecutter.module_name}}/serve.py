"""Serve the champion model over HTTP with `mlflow models serve`.

The server loads the model that ``predict.model_uri()`` names, as ``predict`` does in
batch, so online and batch predictions agree. It resolves the champion when it starts:
after a promotion, restart it. Requests send raw rows; a missing column or a value of the
wrong type gets a 400 naming the column.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from dslc import get_logger, tracking

from {{ cookiecutter.module_name }}.predict import champion, model_uri

log = get_logger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="5001")
    args = parser.parse_args(argv)

    store = tracking.ensure_store()  # the tracking URI in force
    version = champion()
    uri = model_uri()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store,
        # A progress bar per model file at start-up says nothing worth reading here.
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    # --env-manager local: this environment already has every dependency of the model.
    command = [sys.executable, "-m", "mlflow", "models", "serve", "--model-uri", uri]
    command += ["--host", args.host, "--port", str(args.port), "--env-manager", "local"]
    log.info(
        "Serving %s (version %s) on http://%s:%s/invocations",
        uri,
        version.version,
        args.host,
        args.port,
    )
    return subprocess.call(command, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
