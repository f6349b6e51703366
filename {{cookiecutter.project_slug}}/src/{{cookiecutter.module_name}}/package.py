"""The champion as a folder that deploys anywhere: `mlflow models generate-dockerfile`.

``make package`` writes ``dist/model/``: the champion version (its code in
``model_dir/code``, its ``requirements.txt``, ``MLmodel`` and ``registered_model_meta``
naming the version) and the ``Dockerfile`` that MLflow makes for it, whose image serves
the model on port 8080. Nothing else of the project goes in: the image installs the
model's own requirements from the package index. The README shows how to build and run
it, and how Spark on a cluster scores with the same model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dslc import config, get_logger, tracking

from {{ cookiecutter.module_name }}.predict import champion

log = get_logger(__name__)


def local_requirements(model_dir: Path) -> list[str]:
    """The model's requirements that name a file: URL, which no other machine can install."""
    lines = (model_dir / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if "file:" in line]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=config.project_root() / "dist" / "model")
    args = parser.parse_args(argv)

    store = tracking.ensure_store()
    version = champion()
    # The version itself, not the alias: the folder holds what this line reports even if
    # the champion moves meanwhile.
    uri = f"models:/{version.name}/{version.version}"
    shutil.rmtree(args.output, ignore_errors=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # a bar per file says nothing here
    command = [sys.executable, "-m", "mlflow", "models", "generate-dockerfile"]
    command += ["--model-uri", uri, "--output-directory", str(args.output)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(args.output, ignore_errors=True)
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"error: mlflow models generate-dockerfile failed: {last}")
    local = local_requirements(args.output / "model_dir")
    if local:
        shutil.rmtree(args.output, ignore_errors=True)
        raise SystemExit(
            f"error: version {version.version} requires a folder of this machine ({local[0]}), "
            "which an image cannot install: run `make train` to log a model without it"
        )
    log.info(
        "Packaged %s version %s in %s: docker build -t %s %s",
        version.name,
        version.version,
        args.output,
        version.name.replace("_", "-"),
        args.output,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
