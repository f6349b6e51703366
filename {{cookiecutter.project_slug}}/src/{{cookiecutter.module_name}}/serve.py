"""Serve the registered model over HTTP with `mlflow models serve`.

The server loads the same pyfunc model that ``predict`` uses in batch, from the
project's tracking store, so online and batch predictions agree.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from dslc import get_logger, tracking

from {{ cookiecutter.module_name }}.predict import model_uri

log = get_logger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="5001")
    parser.add_argument("--version", default="latest", help="registered model version")
    args = parser.parse_args(argv)

    tracking.ensure_store()
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking.uri()}
    uri = model_uri(args.version)
    # --env-manager local: this environment already has every dependency of the model.
    command = [sys.executable, "-m", "mlflow", "models", "serve", "--model-uri", uri]
    command += ["--host", args.host, "--port", str(args.port), "--env-manager", "local"]
    log.info("Serving %s on http://%s:%s/invocations", uri, args.host, args.port)
    return subprocess.call(command, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
