"""Slow: the champion leaves the project and runs from the registry alone.

A project generated from a copy of the template (dslc_source=auto from a folder) trains
its champion; then the copy is moved away. From an empty folder, with only the tracking
URI set and no virtual environment on PATH, MLflow's own clients build the model's
environment from its files (`--env-manager uv`) and answer as `make predict` did.
`make package` and `uv build` give what leaves the project on other routes.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import seed_environment
from tests.generated import bake_cli, commit_all, sh, template_git_copy
from tests.servers import background, free_port, post_json

pytestmark = pytest.mark.slow

MODULE = "my_ds_project"
# What a model holds besides its code folder, as MLflow writes it (registered_model_meta
# comes with `models:/` downloads).
MODEL_FILES = {"MLmodel", "model.skops", "requirements.txt", "python_env.yaml", "conda.yaml"}
MODEL_FILES |= {"input_example.json", "serving_input_example.json"}


@pytest.fixture(scope="module")
def away(ready_project, tmp_path_factory) -> SimpleNamespace:
    """A trained, packaged and built project whose template folder has been moved away."""
    base = tmp_path_factory.mktemp("deploy")
    template = template_git_copy(base / "template")
    project = bake_cli(base, template=str(template))
    commit_all(project)
    seed_environment(project, ready_project)
    sh("make setup", project)
    show = "from importlib.metadata import distribution; print(distribution('dslc').read_text"
    origin = sh(f".venv/bin/python -c \"{show}('direct_url.json'))\"", project).stdout
    assert f'"{(template / "helpers").as_uri()}"' in origin, origin  # not the seed's dslc
    sh("make train predict && make package", project)
    sh(f"uv build --quiet --out-dir {base / 'built'}", project)
    # Nothing from here on may need the folder the project was generated from.
    template.rename(base / "template-moved-away")
    (models,) = (project / "mlartifacts" / "models").iterdir()
    with open(project / "data" / "processed" / "iris_predictions.csv", newline="") as handle:
        predicted = list(csv.DictReader(handle))
    yield SimpleNamespace(
        base=base, project=project, model=models / "artifacts", predicted=predicted
    )
    shutil.rmtree(project / ".venv", ignore_errors=True)


def outside(away: SimpleNamespace) -> dict[str, str]:
    """The environment of a shell elsewhere: the tracking URI, uv, and no virtualenv on PATH."""
    path = [
        folder
        for folder in os.environ["PATH"].split(os.pathsep)
        if folder and not (Path(folder).parent / "pyvenv.cfg").exists()
    ]
    assert shutil.which("uv", path=os.pathsep.join(path)), "--env-manager uv needs uv on PATH"
    return {
        "PATH": os.pathsep.join(path),
        "MLFLOW_TRACKING_URI": f"sqlite:///{away.project}/mlflow.db",
        # The model's environment is built here, from scratch, by this test.
        "MLFLOW_ENV_ROOT": str(away.base / "model-envs"),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def rows_and_predictions(away: SimpleNamespace) -> tuple[dict, list[str]]:
    """The rows `make predict` scored, as a request body, and what it predicted for them."""
    columns = [name for name in away.predicted[0] if name != "prediction"]
    data = [[float(row[name]) for name in columns] for row in away.predicted]
    body = {"dataframe_split": {"columns": columns, "data": data}}
    return body, [row["prediction"] for row in away.predicted]


def test_the_model_holds_its_code_and_requirements_from_an_index_only(away):
    files = {path.relative_to(away.model).as_posix() for path in away.model.rglob("*")}
    package = away.project / "src" / MODULE
    code = {f"code/{MODULE}/{path.relative_to(package)}" for path in package.rglob("*.py")}
    code |= {"code", f"code/{MODULE}"}
    files.discard("registered_model_meta")  # written when the version is registered
    assert files == MODEL_FILES | code, "the model holds the package's code and nothing else"

    requirements = (away.model / "requirements.txt").read_text().split()
    names = {line.split("==")[0].lower() for line in requirements}
    assert all("==" in line and "file:" not in line for line in requirements), requirements
    assert {"scikit-learn", "pandas", "mlflow"} <= names and "dslc" not in names, names


def test_served_with_uv_from_elsewhere_answers_as_make_predict(away):
    empty = away.base / "elsewhere-serve"
    empty.mkdir()
    port = free_port()
    mlflow = away.project / ".venv" / "bin" / "mlflow"  # by its path: PATH has no .venv
    command = (
        f"{mlflow} models serve -m models:/{MODULE}@champion --env-manager uv"
        f" --host 127.0.0.1 --port {port}"
    )
    url = f"http://127.0.0.1:{port}"
    body, expected = rows_and_predictions(away)
    log = away.base / "serve.log"
    with background(command, empty, f"{url}/ping", log, env=outside(away), timeout=900):
        status, answer = post_json(f"{url}/invocations", body)
    assert status == 200, answer
    assert answer["predictions"] == expected
    assert len(expected) == 38 and len(set(expected)) == 3
    assert list(empty.iterdir()) == [], "serving wrote into the folder it ran from"

    # The environment MLflow built holds the model's requirements, not the project or dslc.
    (python,) = (away.base / "model-envs").glob("*/bin/python")
    for name in ("dslc", MODULE):
        found = subprocess.run([python, "-c", f"import {name}"], capture_output=True, check=False)
        assert found.returncode != 0, f"{name} is installed in the model's own environment"


def test_predicted_with_uv_from_elsewhere_as_make_predict(away):
    empty = away.base / "elsewhere-predict"
    empty.mkdir()
    body, expected = rows_and_predictions(away)
    (empty / "rows.json").write_text(json.dumps(body))
    mlflow = away.project / ".venv" / "bin" / "mlflow"
    command = (
        f"{mlflow} models predict -m models:/{MODULE}@champion --env-manager uv"
        " -t json -i rows.json -o predictions.json"
    )
    sh(command, empty, timeout=900, env=outside(away))
    assert json.loads((empty / "predictions.json").read_text())["predictions"] == expected


def test_make_package_writes_the_champion_with_mlflows_dockerfile(away):
    folder = away.project / "dist" / "model"
    dockerfile = (folder / "Dockerfile").read_text()
    assert dockerfile.startswith("# Build an image that can serve mlflow models.")
    assert "COPY model_dir /opt/ml/model" in dockerfile
    model = folder / "model_dir"
    assert (model / "code" / MODULE / "features.py").is_file()
    assert "file:" not in (model / "requirements.txt").read_text()
    meta = yaml.safe_load((model / "registered_model_meta").read_text())
    assert (meta["model_name"], str(meta["model_version"])) == (MODULE, "1")


def test_sdist_and_wheel_hold_code_and_metadata_only(away):
    built = away.base / "built"
    (sdist,) = built.glob("*.tar.gz")
    (wheel,) = built.glob("*.whl")
    with tarfile.open(sdist) as archive:
        top = f"{MODULE}-0.1.0/"
        members = {name.removeprefix(top) for name in archive.getnames() if name != top[:-1]}
    meta = {"PKG-INFO", "pyproject.toml", "README.md", "LICENSE", ".gitignore"}
    assert {name for name in members if not name.startswith(f"src/{MODULE}/")} == meta
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    outside_package = [
        name for name in names if not name.startswith((f"{MODULE}/", f"{MODULE}-0.1.0.dist-info/"))
    ]
    assert outside_package == [], outside_package
    assert f"{MODULE}-0.1.0.dist-info/licenses/LICENSE" in names
