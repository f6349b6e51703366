"""Slow: the example pipeline end to end in a baked project, tracked in MLflow.

From data to a registered model (`make train`), batch predictions (`make predict`), the
same model online (`make serve`), notebooks logging to the same store, and the same
pipeline against a real `mlflow server` on loopback by changing only `.env`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.generated import ENV, sh

pytestmark = pytest.mark.slow

INSPECT = Path(__file__).with_name("inspect_runs.py")
SECRET = "s3cr3t-value-from-dotenv"


def runs(project: Path, env: dict | None = None) -> dict:
    return json.loads(sh(f".venv/bin/python {INSPECT}", project, env=env).stdout)


@pytest.fixture(scope="module")
def trained(ready_project):
    """`make train predict` once, with a secret in .env that must never be logged."""
    env_file = ready_project / ".env"
    original = env_file.read_text()
    env_file.write_text(original + f"\nAPI_TOKEN={SECRET}\nDB_PASSWORD={SECRET}\n")
    try:
        sh("make train predict", ready_project)
    finally:
        env_file.write_text(original)
    return ready_project


def _train_run(summary: dict) -> dict:
    trained_runs = [run for run in summary["runs"] if run["name"].startswith("train")]
    assert trained_runs, [run["name"] for run in summary["runs"]]
    return trained_runs[0]


def test_train_run_records_everything(trained):
    summary = runs(trained)
    run = _train_run(summary)
    commit = sh("git rev-parse HEAD", trained).stdout.strip()

    assert run["status"] == "FINISHED"
    assert run["params"]["model.C"] == "1.0" and run["params"]["cv_folds"] == "5"
    assert {"test_accuracy", "test_f1_macro", "cv_accuracy", "cv_accuracy_mean"} <= set(
        run["metrics"]
    )
    assert run["tags"]["mlflow.source.git.commit"] == commit
    assert "figures/confusion_matrix.png" in run["artifacts"]
    inputs = {item["name"]: item["digest"] for item in run["inputs"]}
    assert {"iris_train", "iris_test"} <= set(inputs)
    fingerprint = sh(".venv/bin/dslc data list", trained).stdout
    assert all(digest and digest.split(":")[-1][:12] in fingerprint for digest in inputs.values())
    assert [m["run_id"] for m in summary["models"]] == [run["id"]]

    assert summary["uri"] == f"sqlite:///{trained}/mlflow.db"
    assert Path(run["artifact_uri"].removeprefix("file://")).is_relative_to(trained)
    assert (trained / "reports" / "figures" / "confusion_matrix.png").is_file()
    predictions = (trained / "data" / "processed" / "iris_predictions.csv").read_text()
    assert len(predictions.splitlines()) == 1 + 38


def test_no_secret_from_env_is_logged(trained):
    summary = runs(trained)
    for run in summary["runs"]:
        logged = json.dumps([run["params"], run["tags"]])
        assert SECRET not in logged, f"secret leaked in run {run['name']}"


def test_notebook_logs_to_the_project_store_with_git_commit(trained):
    notebooks = trained / "notebooks"
    script = (
        "import nbformat, sys; from nbclient import NotebookClient; "
        "nb = nbformat.read(sys.argv[1], as_version=4); "
        "NotebookClient(nb, timeout=300, kernel_name='python3', "
        "resources={'metadata': {'path': sys.argv[2]}}).execute()"
    )
    notebook = next(notebooks.glob("01-*.ipynb"))
    sh(f'../.venv/bin/python -c "{script}" {notebook.name} .', notebooks, env={"MPLBACKEND": "Agg"})

    summary = runs(trained)
    explored = [run for run in summary["runs"] if run["name"].startswith("explore-petal-size")]
    assert explored, [run["name"] for run in summary["runs"]]
    commit = sh("git rev-parse HEAD", trained).stdout.strip()
    assert explored[0]["tags"]["mlflow.source.git.commit"] == commit
    assert "figures/petal_size.png" in explored[0]["artifacts"]
    assert [item["name"] for item in explored[0]["inputs"]] == ["iris_raw"]
    for stray in ("mlflow.db", "mlruns", "mlartifacts"):
        assert not (notebooks / stray).exists(), f"{stray} appeared beside the notebook"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def background(command: str, cwd: Path, url: str, timeout: float = 240):
    """Start a server, wait until `url` answers, and always stop it (whole process group)."""
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stderr.read()[-3000:]
                raise AssertionError(f"`{command}` did not come up: {output}")
            time.sleep(1)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_serve_answers_like_batch_predict(trained):
    import csv

    with open(trained / "data" / "processed" / "iris_predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    columns = [name for name in rows[0] if name != "prediction"]
    payload = {
        "dataframe_split": {
            "columns": columns,
            "data": [[float(row[name]) for name in columns] for row in rows],
        }
    }
    port = _free_port()
    with background(f"make serve SERVE_PORT={port}", trained, f"http://127.0.0.1:{port}/ping"):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            online = json.loads(response.read())["predictions"]
    assert online == [row["prediction"] for row in rows]


def test_pipeline_runs_against_a_tracking_server_by_changing_only_env(trained, tmp_path):
    port = _free_port()
    server = (
        f".venv/bin/mlflow server --backend-store-uri sqlite:///{tmp_path}/server.db"
        f" --artifacts-destination {tmp_path}/artifacts --host 127.0.0.1 --port {port}"
    )
    env_file = trained / ".env"
    original = env_file.read_text()
    with background(server, trained, f"http://127.0.0.1:{port}/health"):
        env_file.write_text(original + f"\nMLFLOW_TRACKING_URI=http://127.0.0.1:{port}\n")
        try:
            sh("make train predict", trained)
            summary = runs(trained)
        finally:
            env_file.write_text(original)
    assert summary["uri"] == f"http://127.0.0.1:{port}"
    run = _train_run(summary)
    assert run["status"] == "FINISHED" and "test_accuracy" in run["metrics"]
    assert "figures/confusion_matrix.png" in run["artifacts"]
    assert list((tmp_path / "artifacts").rglob("confusion_matrix.png"))


def test_mlproject_entry_points_drive_the_same_pipeline(trained, tmp_path):
    """`mlflow run` creates the run; the project's code continues it with everything."""
    store = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    experiment = sh(
        ".venv/bin/python -c 'from dslc import config; print(config.project_name())'", trained
    ).stdout.strip()
    sh(
        f"uv run mlflow run . -e train -P C=0.5 --env-manager local --experiment-name {experiment}",
        trained,
        env=store,
    )
    summary = runs(trained, env=store)
    (run,) = summary["runs"]
    assert run["status"] == "FINISHED"
    assert run["tags"]["mlflow.project.entryPoint"] == "train"
    assert run["params"]["C"] == "0.5" and run["params"]["model.C"] == "0.5"
    assert {"test_accuracy", "cv_accuracy_mean"} <= set(run["metrics"])
    assert "figures/confusion_matrix.png" in run["artifacts"]
    assert {"iris_train", "iris_test"} <= {item["name"] for item in run["inputs"]}
    assert [m["run_id"] for m in summary["models"]] == [run["id"]]
