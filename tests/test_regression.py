"""Slow: the regression example (scikit-learn's diabetes data) end to end, as a data
scientist who answered problem=regression meets it: setup, test, train, predict, serve.

test_pipeline.py covers the classification example in depth (Spark, promotion, tracking
servers, MLproject); this module checks what differs: the metrics, the champion's
direction (lower RMSE wins), the figure, the data files and the served answer.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.conftest import seed_environment
from tests.generated import bake_cli, commit_all, sh
from tests.servers import background, free_port, post_json

pytestmark = pytest.mark.slow

INSPECT = Path(__file__).with_name("inspect_runs.py")


def runs(project: Path) -> dict:
    return json.loads(sh(f".venv/bin/python {INSPECT}", project).stdout)


@pytest.fixture(scope="module")
def project(ready_project, tmp_path_factory):
    """A regression project, set up with `ready_project`'s environment (the same
    dependencies, relocatable; hard-linked as `copy_project` does) and lock, so `make
    setup` installs only the project."""
    project = bake_cli(tmp_path_factory.mktemp("regression"), ci="github", problem="regression")
    seed_environment(project, ready_project)
    sh(f"cp -a {ready_project}/uv.lock .", project)
    commit_all(project)
    sh("make setup", project)
    yield project
    shutil.rmtree(project / ".venv", ignore_errors=True)


@pytest.fixture(scope="module")
def trained(project):
    tested = sh("make test", project)
    assert " passed" in tested.stdout and "warning" not in tested.stdout.lower(), tested.stdout
    result = sh("make train predict", project)
    return project, result.stdout + result.stderr


def test_train_logs_regression_scores_as_means_and_spreads(trained):
    project, output = trained
    (run,) = [run for run in runs(project)["runs"] if run["name"].startswith("train")]
    assert run["params"] == {"estimator": "ridge", "alpha": "1.0", "cv_folds": "5", "seed": "0"}
    assert set(run["metrics"]) == {
        *(f"test_{score}" for score in ("rmse", "mae", "r2")),
        *(f"cv_{score}_{stat}" for score in ("rmse", "mae", "r2") for stat in ("mean", "std")),
    }
    assert "figures/predicted_vs_actual.png" in run["artifacts"]
    assert (project / "reports" / "figures" / "predicted_vs_actual.png").is_file()
    assert {item["name"] for item in run["inputs"]} == {"diabetes_train", "diabetes_test"}
    predictions = (project / "data" / "processed" / "diabetes_predictions.csv").read_text()
    assert len(predictions.splitlines()) == 1 + 111
    # Quiet: no progress bar in a log, no DVC hint about git add or dvc push.
    for hint in ("cross-validation", "git add", "autostage", "dvc push"):
        assert hint not in output, output[-3000:]


def test_the_champion_is_the_lowest_rmse(trained):
    project, _ = trained
    params = project / "params.yaml"
    original = params.read_text()
    params.write_text(original.replace("ridge: {alpha: 1.0}", "ridge: {alpha: 100.0}"))
    try:  # a heavily regularised ridge: a higher RMSE, so not the champion
        worse = sh("make train", project)
    finally:
        params.write_text(original)
    (line,) = [line for line in worse.stderr.splitlines() if "registered version" in line]
    assert "stays version 1" in line and "not lower than" in line, line
    assert runs(project)["champion"] == "1"


def test_the_readme_request_gets_the_answer_the_readme_shows(trained, tmp_path):
    project, _ = trained
    readme = (project / "README.md").read_text()
    found = re.search(r"```bash\n(curl .*?)```\s+It answers.*?```json\n(.*?)```", readme, re.S)
    assert found, "the README shows a curl request and its answer"
    body = json.loads(shlex.split(found[1])[shlex.split(found[1]).index("-d") + 1])
    with open(project / "data" / "raw" / "diabetes.csv", newline="") as handle:
        columns = next(csv.reader(handle))
    assert all(list(row) == columns[:-1] for row in body["dataframe_records"])

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with background(f"make serve SERVE_PORT={port}", project, f"{url}/ping", tmp_path / "log"):
        status, online = post_json(f"{url}/invocations", body)
    assert status == 200, online
    expected = json.loads(found[2])["predictions"]
    assert online["predictions"] == pytest.approx(expected, rel=1e-9)
