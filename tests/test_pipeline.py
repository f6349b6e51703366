"""Slow: the example pipeline end to end in a baked project, tracked in MLflow.

From data to a registered champion (`make train`), batch predictions with pandas and
Spark (`make predict`), the same model online (`make serve`) with the README's request,
promotion by hand (`make promote`), notebooks logging to the same store, and the same
pipeline against a real `mlflow server` on loopback by changing only `.env`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shlex
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.generated import sh
from tests.servers import MLFLOW_SERVER, background, free_port, post_json

pytestmark = pytest.mark.slow

INSPECT = Path(__file__).with_name("inspect_runs.py")
SECRET = "s3cr3t-value-from-dotenv"


def runs(project: Path, env: dict | None = None) -> dict:
    return json.loads(sh(f".venv/bin/python {INSPECT}", project, env=env).stdout)


@pytest.fixture(scope="module")
def first_training(own_project) -> SimpleNamespace:
    """`make train predict` once in the module's own project, with a secret in .env that
    must never be logged: what it printed, and what the store, git and the data held right
    after (later tests add runs, versions and predictions)."""
    env_file = own_project / ".env"
    original = env_file.read_text()
    env_file.write_text(original + f"\nAPI_TOKEN={SECRET}\nDB_PASSWORD={SECRET}\n")
    try:
        result = sh("make train predict", own_project)
    finally:
        env_file.write_text(original)
    return SimpleNamespace(
        output=result.stdout + result.stderr,
        summary=runs(own_project),
        commit=sh("git rev-parse HEAD", own_project).stdout.strip(),
        fingerprints=sh(".venv/bin/dslc data list", own_project).stdout,
        predictions=(own_project / "data" / "processed" / "iris_predictions.csv").read_text(),
    )


@pytest.fixture(scope="module")
def train_output(first_training) -> str:
    return first_training.output


@pytest.fixture(scope="module")
def trained(own_project, first_training) -> Path:
    return own_project


def _train_run(summary: dict) -> dict:
    trained_runs = [run for run in summary["runs"] if run["name"].startswith("train")]
    assert trained_runs, [run["name"] for run in summary["runs"]]
    return trained_runs[0]


def test_train_run_records_everything(trained, first_training):
    summary, commit = first_training.summary, first_training.commit
    run = _train_run(summary)

    assert run["status"] == "FINISHED"
    # The chosen estimator and its own arguments only, not the other ready estimators'.
    assert run["params"] == {
        "estimator": "logistic_regression",
        "C": "1.0",
        "max_iter": "500",
        "cv_folds": "5",
        "seed": "0",
    }
    assert set(run["metrics"]) == {
        f"{stage}_{score}{stat}"
        for stage, stats in (("test", [""]), ("cv", ["_mean", "_std"]))
        for score in ("accuracy", "f1_macro")
        for stat in stats
    }, "cross-validation as mean and spread, never one fold's value under a bare name"
    assert run["tags"]["mlflow.source.git.commit"] == commit
    assert "figures/confusion_matrix.png" in run["artifacts"]
    inputs = {item["name"]: item["digest"] for item in run["inputs"]}
    assert {"iris_train", "iris_test"} <= set(inputs)
    fingerprint = first_training.fingerprints
    assert all(digest and digest.split(":")[-1][:12] in fingerprint for digest in inputs.values())
    assert [m["run_id"] for m in summary["models"]] == [run["id"]]
    assert summary["champion"] == "1", "the first version becomes the champion"

    assert summary["uri"] == f"sqlite:///{trained}/mlflow.db"
    assert Path(run["artifact_uri"].removeprefix("file://")).is_relative_to(trained)
    assert (trained / "reports" / "figures" / "confusion_matrix.png").is_file()
    assert len(first_training.predictions.splitlines()) == 1 + 38


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


# What counts as noise in a daily command's output: warnings that libraries print
# (DeprecationWarning, FutureWarning, StarletteDeprecationWarning, TqdmWarning...) and
# MLflow's complaint about pip.
NOISE = re.compile(r"\w+Warning: |Failed to resolve installed pip version|IProgress not found")
# MLflow's own progress lines: its INFO log lines and the two lines registering prints.
MLFLOW_SAYS = re.compile(r" INFO mlflow\.|^Successfully registered model|^Created version")
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def noise(output: str) -> list[str]:
    return [line for line in output.splitlines() if NOISE.search(line)]


def module_name(project: Path) -> str:
    (package,) = [path.name for path in (project / "src").iterdir() if path.is_dir()]
    return package


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_train_says_in_one_line_what_became_of_the_new_version(train_output):
    lines = [line for line in train_output.splitlines() if "registered version" in line]
    assert len(lines) == 1, train_output[-3000:]
    assert "registered version 1" in lines[0] and "first champion" in lines[0], lines[0]


def test_train_and_predict_print_no_library_warnings(train_output):
    assert noise(train_output) == []


def test_train_and_predict_print_no_dvc_hints_or_progress_bars(train_output):
    """DVC's `git add`, autostage and `dvc push` hints, tqdm's bar in a log: none."""
    for hint in ("git add", "autostage", "dvc push", "cross-validation"):
        assert hint not in train_output, train_output[-3000:]


def test_train_says_one_line_per_model_step_not_mlflows(train_output):
    """dslc's lines for logging and registering the model; none of MLflow's own."""
    mlflow_lines = [line for line in train_output.splitlines() if MLFLOW_SAYS.search(line)]
    assert mlflow_lines == [], mlflow_lines
    assert train_output.count("dslc.tracking: logged model 'model'") == 1, train_output[-3000:]
    assert train_output.count("dslc.tracking: registered model") == 1, train_output[-3000:]


def test_the_logged_model_requires_no_notebook_or_report_tools(trained):
    """Its requirements are what loading it imports, not the project's whole environment."""
    found = list((trained / "mlartifacts").rglob("models/*/artifacts/requirements.txt"))
    assert found
    for requirements in found:
        lines = requirements.read_text().split()
        names = {re.split(r"[=<>!~\[; @]", line)[0].lower() for line in lines}
        assert {"scikit-learn", "pandas"} <= names, names
        assert not names & {"nbconvert", "ipykernel", "jupyterlab", "pytest", "matplotlib"}, names


def test_progress_bars_in_notebooks_print_no_warning(trained, tmp_path):
    """tqdm.auto (the pipeline's and MLflow's progress bars) in a notebook kernel."""
    notebook = tmp_path / "bars.ipynb"
    cell = "from tqdm.auto import tqdm\nfor _ in tqdm(range(3)):\n    pass"
    document = {
        "cells": [{"cell_type": "code", "metadata": {}, "source": cell, "outputs": []}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 4,
    }
    notebook.write_text(json.dumps(document))
    script = (
        "import nbformat, sys; from nbclient import NotebookClient; "
        "nb = nbformat.read(sys.argv[1], as_version=4); "
        "NotebookClient(nb, timeout=300, kernel_name='python3').execute(); "
        "nbformat.write(nb, sys.argv[1])"
    )
    sh(f'.venv/bin/python -c "{script}" {notebook}', trained)
    outputs = json.dumps(json.loads(notebook.read_text())["cells"][0]["outputs"])
    assert "IProgress" not in outputs and "Warning" not in outputs, outputs


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    """`make serve` on a free port, for the tests that ask the champion over HTTP."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with background(f"make serve SERVE_PORT={port}", trained, f"{url}/ping", log):
        yield SimpleNamespace(url=url, port=port, log=log)


def readme_request(project: Path) -> tuple[str, str]:
    """The `curl` command that the project's README shows, and the answer it shows."""
    readme = (project / "README.md").read_text()
    found = re.search(r"```bash\n(curl .*?)```\s+It answers:\s+```json\n(.*?)```", readme, re.S)
    assert found, "the README shows a curl request and its answer"
    return found[1], found[2]


def test_readme_request_gets_the_answer_the_readme_shows(trained, server):
    command, answer = readme_request(trained)
    assert "127.0.0.1:5001" in command, "the README's port is make serve's default"
    command = command.replace("127.0.0.1:5001", f"127.0.0.1:{server.port}")
    arguments = shlex.split(command)
    body = json.loads(arguments[arguments.index("-d") + 1])
    raw_columns = read_rows(trained / "data" / "raw" / "iris.csv")[0].keys() - {"species"}
    assert all(row.keys() == raw_columns for row in body["dataframe_records"])

    if shutil.which("curl"):
        got = json.loads(sh(command, trained).stdout)
    else:  # the same request, sent from Python
        status, got = post_json(f"{server.url}/invocations", body)
        assert status == 200
    assert got == json.loads(answer)


BAD_ROWS = {
    "a column missing": ({k: v for k, v in ROW.items() if k != "petal_width"}, "petal_width"),
    "a misspelt column": (
        {"Sepal_Length": 5.1, **{k: v for k, v in ROW.items() if k != "sepal_length"}},
        "sepal_length",
    ),
    "text for a number": ({**ROW, "sepal_width": "wide"}, "sepal_width"),
    "a list for a number": ({**ROW, "petal_length": [1.4, 2.0]}, "petal_length"),
}


@pytest.mark.parametrize("case", BAD_ROWS, ids=list(BAD_ROWS))
def test_a_bad_request_gets_400_naming_the_column(server, case):
    row, column = BAD_ROWS[case]
    status, answer = post_json(f"{server.url}/invocations", {"dataframe_records": [row]})
    assert status == 400, answer
    assert column in answer["message"], answer["message"]


HOSTILE_BODIES = {
    "a number of 5,000 digits": b'{"dataframe_records": [{"sepal_length": ' + b"9" * 5000 + b"}]}",
    "100,000 nested lists": b"[" * 100_000 + b"]" * 100_000,
    "20 MB of bad JSON": b'{"dataframe_records": [' + b"x" * 20_000_000 + b"]}",
    "20 MB of a bad column": b'{"dataframe_split": {"columns": ["'
    + b"x" * 20_000_000
    + b'"], "data": [[1]]}}',
}


@pytest.mark.parametrize("case", HOSTILE_BODIES, ids=list(HOSTILE_BODIES))
def test_malformed_requests_get_a_short_4xx(server, case):
    """MLflow alone answers the first two with a 500 and echoes the last two whole."""
    request = urllib.request.Request(
        f"{server.url}/invocations",
        data=HOSTILE_BODIES[case],
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=120)
    answer = refused.value.read()
    assert 400 <= refused.value.code < 500, answer[:300]
    assert len(answer) < 1000 and json.loads(answer)["message"]


def test_pandas_spark_and_http_give_identical_predictions(trained, first_training, server):
    """One model, three ways to score: the same rows, the same answers."""
    if shutil.which("java") is None and not os.environ.get("CI"):
        pytest.skip("Spark needs Java (Debian: openjdk-17-jre-headless; .ci/run installs it)")
    predictions = trained / "data" / "processed" / "iris_predictions.csv"
    by_pandas = first_training.predictions  # what `make predict` (pandas) wrote
    rows = list(csv.DictReader(by_pandas.splitlines()))
    spark = sh("make predict ENGINE=spark", trained, timeout=1800)
    assert noise(spark.stdout + spark.stderr) == []
    assert predictions.read_text() == by_pandas, "Spark wrote a different predictions dataset"

    columns = [name for name in rows[0] if name != "prediction"]
    payload = {
        "dataframe_split": {
            "columns": columns,
            "data": [[float(row[name]) for name in columns] for row in rows],
        }
    }
    status, online = post_json(f"{server.url}/invocations", payload)
    assert status == 200, online
    assert online["predictions"] == [row["prediction"] for row in rows]
    assert len(rows) == 38 and len({row["prediction"] for row in rows}) == 3


def test_serve_prints_no_library_warnings(server):
    log = server.log.read_text(errors="replace")
    assert "Uvicorn running" in log
    assert noise(log) == []


def test_spark_without_java_says_in_one_line_what_to_install(trained, tmp_path):
    for tool in ("bash", "make"):  # and nothing else on PATH: no java, no uv
        (tmp_path / tool).symlink_to(shutil.which(tool))
    env = {"PATH": str(tmp_path), "JAVA_HOME": ""}
    result = sh("make predict ENGINE=spark", trained, check=False, env=env)
    assert result.returncode != 0
    # Besides make's own "*** [Makefile:n: predict] Error 1".
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "error" in line]
    assert len(lines) == 1, result.stdout + result.stderr
    assert lines[0].startswith("error: ") and "openjdk-17-jre-headless" in lines[0]


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ("python -m {module}.predict", "error: "),
        ("dslc serve --port 5999", "dslc: error: "),
        ("dslc package", "dslc: error: "),
    ],
)
def test_scoring_before_any_training_says_so_in_one_line(trained, tmp_path, step, error):
    empty_store = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    command = ".venv/bin/" + step.format(module=module_name(trained))
    result = sh(command, trained, check=False, env=empty_store)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith(f"{error}no champion model yet"), errors
    assert "Traceback" not in result.stderr


@contextlib.contextmanager
def train_params(project: Path, **changes):
    """params.yaml's `train` section with `changes` (dotted keys reach into estimators)."""
    file = project / "params.yaml"
    original = file.read_text()
    document = yaml.safe_load(original)
    for key, value in changes.items():
        *path, last = key.split("__")
        section = document["train"]
        for name in path:
            section = section[name]
        section[last] = value
    file.write_text(yaml.safe_dump(document))
    try:
        yield
    finally:
        file.write_text(original)


def test_training_outside_dvc_is_refused_before_it_writes(trained):
    """python -m <module>.train would leave outputs that dvc.lock does not record."""
    summary = trained / "models" / "train.json"
    before = summary.read_bytes(), runs(trained)
    refused = sh(f".venv/bin/python -m {module_name(trained)}.train", trained, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "error: train writes outputs that dvc.lock records, so it runs as DVC's stage: "
        "`make train` (dvc repro train), not directly"
    ]
    assert (summary.read_bytes(), runs(trained)) == before


def test_a_worse_run_keeps_the_champion_and_make_promote_moves_it(trained):
    with train_params(trained, estimators__logistic_regression__C=0.01):
        worse = sh("make train", trained)
    (line,) = [line for line in worse.stderr.splitlines() if "registered version" in line]
    summary = runs(trained)
    version = max(int(model["version"]) for model in summary["models"])
    assert summary["champion"] == "1" and version > 1
    assert f"registered version {version}" in line and "stays version 1" in line, line

    refused = sh("make promote", trained, check=False)
    assert refused.returncode != 0
    assert [line for line in refused.stderr.splitlines() if "error" in line] == [
        "error: name the version to promote: make promote VERSION=<n> "
        "('uv run dslc runs' lists them)"
    ]
    try:
        sh(f"make promote VERSION={version}", trained)
        assert runs(trained)["champion"] == str(version)
    finally:
        sh("make promote VERSION=1", trained)
    assert runs(trained)["champion"] == "1"


def test_pipeline_runs_against_a_tracking_server_by_changing_only_env(trained, tmp_path):
    port = free_port()
    server = (
        f"{MLFLOW_SERVER} --backend-store-uri sqlite:///{tmp_path}/server.db"
        f" --artifacts-destination {tmp_path}/artifacts --host 127.0.0.1 --port {port}"
    )
    env_file = trained / ".env"
    original = env_file.read_text()
    with background(server, trained, f"http://127.0.0.1:{port}/health", tmp_path / "server.log"):
        env_file.write_text(original + f"\nMLFLOW_TRACKING_URI=http://127.0.0.1:{port}\n")
        try:
            # Code, data and parameters are those DVC trained on already: FORCE=1 trains
            # again, as the README says to log to a new tracking server.
            sh("make train predict FORCE=1", trained)
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
    command = f"uv run mlflow run . -e train --env-manager local --experiment-name {experiment}"
    with train_params(trained, estimators__logistic_regression__C=0.5):
        sh(command, trained, env=store)
    summary = runs(trained, env=store)
    (run,) = summary["runs"]
    assert run["status"] == "FINISHED"
    assert run["tags"]["mlflow.project.entryPoint"] == "train"
    assert run["params"]["estimator"] == "logistic_regression" and run["params"]["C"] == "0.5"
    assert {"test_accuracy", "cv_accuracy_mean", "cv_accuracy_std"} <= set(run["metrics"])
    assert "figures/confusion_matrix.png" in run["artifacts"]
    assert {"iris_train", "iris_test"} <= {item["name"] for item in run["inputs"]}
    assert [m["run_id"] for m in summary["models"]] == [run["id"]]


@pytest.fixture
def swap(trained, tmp_path):
    """Another ready estimator, chosen in params.yaml for one test, on a store of its own."""
    predictions = trained / "data" / "processed" / "iris_predictions.csv"
    original = predictions.read_text()
    store = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/swapped.db"}
    try:
        yield SimpleNamespace(env=store, tmp_path=tmp_path)
    finally:
        predictions.write_text(original)


def test_another_estimator_trains_predicts_and_serves_through_make(trained, swap):
    with train_params(trained, estimator="random_forest"):
        sh("make train predict", trained, env=swap.env)
    rows = read_rows(trained / "data" / "processed" / "iris_predictions.csv")
    (run,) = [run for run in runs(trained, env=swap.env)["runs"] if run["name"].startswith("train")]
    assert run["params"] == {
        "estimator": "random_forest",
        "n_estimators": "200",
        "max_depth": "8",
        "cv_folds": "5",
        "seed": "0",
    }

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = f"make serve SERVE_PORT={port}"
    with background(serve, trained, f"{url}/ping", swap.tmp_path / "serve.log", env=swap.env):
        status, online = post_json(f"{url}/invocations", {"dataframe_records": [ROW]})
        columns = [name for name in rows[0] if name != "prediction"]
        data = [[float(row[name]) for name in columns] for row in rows]
        payload = {"dataframe_split": {"columns": columns, "data": data}}
        _, batch = post_json(f"{url}/invocations", payload)
    assert status == 200 and online["predictions"] == ["setosa"]
    assert batch["predictions"] == [row["prediction"] for row in rows]


ROUND_TRIP = """
import sys

from dslc import data, tracking

from {module} import predict, train
from {module}.dataset import TARGET, TEST_DATASET, TRAIN_DATASET

train_rows, test_rows = data.load(TRAIN_DATASET), data.load(TEST_DATASET)
X_test = test_rows.drop(columns=[TARGET])
run_id = train.main(train.load_params())  # not the DVC stage: no project file
(version,) = tracking.client().search_model_versions(f"run_id = '{{run_id}}'")
served = predict.predict(X_test, f"models:/{{version.name}}/{{version.version}}")
model = train.make_model(train.load_params())
fitted = model.fit(train_rows.drop(columns=[TARGET]), train_rows[TARGET])
assert list(served) == list(fitted.predict(X_test)), sys.argv[1]
print(version.version)
"""


def test_another_estimator_logs_registers_and_loads_back(trained, swap):
    """Cheaper than through make: train.main(params), then predict.predict on what it registered."""
    script = swap.tmp_path / "round_trip.py"
    script.write_text(ROUND_TRIP.format(module=module_name(trained)))
    with train_params(trained, estimator="hist_gradient_boosting", cv_folds=2):
        result = sh(f".venv/bin/python {script} hist_gradient_boosting", trained, env=swap.env)
    assert result.stdout.split() == ["1"], result.stdout
