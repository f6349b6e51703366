"""Tests of logging models and registering them."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
pytest.importorskip("filelock", reason="filelock not installed (dslc[tracking] extra)")

pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")

import yaml  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler  # noqa: E402

from dslc import tracking  # noqa: E402


def test_log_model_with_signature_and_register(tproj: Path) -> None:
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    y = [0, 0, 1, 1]
    model = LogisticRegression().fit(x, y)
    with tracking.run() as run:
        # Explicit requirements skip MLflow's requirement inference (a subprocess: slow).
        info = run.log_model(model, input_example=x.head(2), pip_requirements=["scikit-learn"])
        first = tracking.register(info, "demo-model")
    second = tracking.register(f"runs:/{run.id}/model", "demo-model")  # after the run too
    assert info.signature is not None
    assert info.signature.inputs.input_names() == ["a", "b"]
    assert info.signature.outputs is not None
    assert (str(first.version), str(second.version)) == ("1", "2")
    loaded = mlflow.pyfunc.load_model(f"models:/demo-model/{first.version}")
    assert list(loaded.predict(x)) == list(model.predict(x))
    assert list((tproj / "mlartifacts").rglob("MLmodel"))
    assert not (tproj / "mlruns").exists()


# -- any scikit-learn estimator --------------------------------------------------------

# The generated project keeps its feature code in its own package and puts it inside the
# model with a FunctionTransformer: the model must load wherever that package imports.
FEATURES_PY = """\
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


def add_area(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["area"] = out["a"] * out["b"]
    return out


class Centre(BaseEstimator, TransformerMixin):
    \"\"\"Keeps a pandas Series, which skops cannot hold.\"\"\"

    def fit(self, frame, y=None):
        self.mean_ = frame.mean()
        return self

    def transform(self, frame):
        return frame - self.mean_
"""


def _frame(n: int = 80) -> Any:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)}
    )
    return frame, (frame["a"] + frame["b"] > 0).astype(int)


def _estimators(features: Any) -> dict[str, tuple[Any, list[str], str]]:
    """name -> (unfitted model, input columns, expected serialization)."""
    onehot = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["c"]),
            ("num", StandardScaler(), ["a", "b"]),
        ]
    )
    return {
        "random_forest": (
            RandomForestClassifier(n_estimators=5, random_state=0),
            ["a", "b"],
            "skops",
        ),
        "gradient_boosting": (GradientBoostingRegressor(n_estimators=5), ["a", "b"], "skops"),
        "hist_gradient_boosting": (HistGradientBoostingClassifier(max_iter=5), ["a", "b"], "skops"),
        "column_transformer": (
            Pipeline([("prep", onehot), ("clf", LogisticRegression())]),
            ["a", "b", "c"],
            "skops",
        ),
        "features_inside": (
            make_pipeline(
                FunctionTransformer(features.add_area),
                ColumnTransformer([("cat", OneHotEncoder(), ["c"])], remainder="passthrough"),
                RandomForestClassifier(n_estimators=5, random_state=0),
            ),
            ["a", "b", "c"],
            "skops",
        ),
        "knn": (KNeighborsClassifier(n_neighbors=3), ["a", "b"], "skops"),
        "pandas_state": (
            make_pipeline(features.Centre(), LogisticRegression()),
            ["a", "b"],
            "cloudpickle",
        ),
        "lambda": (
            make_pipeline(FunctionTransformer(lambda f: f * 2), LogisticRegression()),
            ["a", "b"],
            "cloudpickle",
        ),
    }


def _serialization(model_uri: str) -> str:
    local = mlflow.artifacts.download_artifacts(model_uri)
    mlmodel = yaml.safe_load((Path(local) / "MLmodel").read_text(encoding="utf-8"))
    return str(mlmodel["flavors"]["sklearn"]["serialization_format"])


_LOAD_ELSEWHERE = """
import io, json, sys
import mlflow, pandas as pd
frame = pd.read_json(io.StringIO(sys.argv[1]), orient="split")
out = {}
for name, uri, columns in json.loads(sys.argv[2]):
    out[name] = [float(v) for v in mlflow.pyfunc.load_model(uri).predict(frame[columns])]
print(json.dumps(out))
"""


def test_any_sklearn_estimator_logs_and_loads_back(
    tproj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight kinds, logged with nothing but a name; loaded here and in a new process."""
    (tproj / "src" / "demo" / "__init__.py").write_text("", encoding="utf-8")
    (tproj / "src" / "demo" / "features.py").write_text(FEATURES_PY, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tproj / "src"))
    import demo.features

    frame, y = _frame()
    logged: dict[str, tuple[str, list[str], list[float]]] = {}
    with tracking.run() as run:
        for name, (model, columns, expected_format) in _estimators(demo.features).items():
            model.fit(frame[columns], y)
            # Explicit requirements only skip MLflow's slow requirement inference (a
            # subprocess per model); the nothing-else path is the next test.
            info = run.log_model(model, name=name, pip_requirements=["scikit-learn"])
            assert _serialization(info.model_uri) == expected_format, name
            loaded = mlflow.pyfunc.load_model(info.model_uri)
            expected = [float(v) for v in model.predict(frame[columns])]
            assert [float(v) for v in loaded.predict(frame[columns])] == expected, name
            logged[name] = (info.model_uri, columns, expected)
    elsewhere = subprocess.run(
        [sys.executable, "-c", _LOAD_ELSEWHERE, frame.to_json(orient="split"),
         json.dumps([[n, uri, cols] for n, (uri, cols, _) in logged.items()])],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(tproj / "src")},
    )  # fmt: skip
    assert elsewhere.returncode == 0, elsewhere.stderr[-2000:]
    predictions = json.loads(elsewhere.stdout)
    assert predictions == {n: p for n, (_, _, p) in logged.items()}


_LOG_FROM_A_SCRIPT = """
import json
import numpy as np, pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from dslc import tracking


def double(frame):  # defined in __main__: skops could only record its name
    return frame * 2


rng = np.random.default_rng(1)
frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
model = make_pipeline(FunctionTransformer(double), RandomForestClassifier(n_estimators=3))
model.fit(frame, frame["a"] > 0)
with tracking.run() as run:
    info = run.log_model(model, name="model", input_example=frame.head(3))
print(json.dumps([info.model_uri, frame.to_json(orient="split"),
                  [int(v) for v in model.predict(frame)]]))
"""


@pytest.mark.slow
def test_log_model_with_nothing_else_is_quiet_and_loads_elsewhere(tproj: Path) -> None:
    """The default path (MLflow infers requirements) from a script, as `make train` runs it."""
    script = tproj / "train_script.py"
    script.write_text(_LOG_FROM_A_SCRIPT, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tproj, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pip version" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    uri, frame_json, expected = json.loads(proc.stdout.strip().splitlines()[-1])
    tracking.ensure_store()  # this process reads the same project store
    assert _serialization(uri) == "cloudpickle"
    frame = pd.read_json(io.StringIO(frame_json), orient="split")
    assert [int(v) for v in mlflow.pyfunc.load_model(uri).predict(frame)] == expected


# -- what a logged model declares, and what logging it prints ----------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (["no", "no", "yes", "yes"], ("prediction", "string")),
        ([0, 0, 1, 1], ("prediction", "long")),
        ([0.5, 0.1, 1.5, 2.0], ("prediction", "double")),
    ],
)
def test_one_prediction_per_row_is_a_named_column(
    tproj: Path, target: list[Any], expected: tuple[str, str]
) -> None:
    """A named column, not a tensor: mlflow.pyfunc.spark_udf maps it to a scalar type."""
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    kind = LogisticRegression if isinstance(target[0], (str, int)) else GradientBoostingRegressor
    model = kind().fit(x, target)
    with tracking.run() as run:
        info = run.log_model(model, input_example=x.head(2), pip_requirements=["scikit-learn"])
    outputs = info.signature.outputs
    assert not outputs.is_tensor_spec()
    assert [(c.name, c.type.name) for c in outputs.inputs] == [expected]
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert list(loaded.predict(x)) == list(model.predict(x))


def test_named_output_keeps_other_shapes_and_names() -> None:
    from dslc.tracking._models import named_output

    assert list(named_output(np.array([1, 2])).columns) == ["prediction"]
    assert list(named_output(pd.Series([1, 2], name="species")).columns) == ["species"]
    table = np.array([[0.1, 0.9], [0.8, 0.2]])  # e.g. class probabilities: left as they are
    assert named_output(table) is table


def _requirement_names(model_uri: str) -> set[str]:
    local = Path(mlflow.artifacts.download_artifacts(model_uri))
    lines = (local / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return {re.split(r"[=<>!~\[;@ ]", line, maxsplit=1)[0].lower() for line in lines if line}


@pytest.mark.slow
def test_log_model_says_one_line_and_requires_what_the_model_imports(
    tproj: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Requirements inferred by loading the model: not the uv project's whole environment.

    The project is a uv project (dslc's own pyproject.toml and uv.lock), which MLflow
    would export whole, fsspec and pyarrow included; pytest is installed here and imported
    by scikit-learn's test helpers when present. The model needs neither.
    """
    helpers = Path(__file__).resolve().parents[1]
    pyproject = (helpers / "pyproject.toml").read_text(encoding="utf-8")
    (tproj / "pyproject.toml").write_text(pyproject + "\n[tool.dslc]\n", encoding="utf-8")
    shutil.copyfile(helpers / "uv.lock", tproj / "uv.lock")
    (tproj / "src" / "demo" / "__init__.py").write_text("", encoding="utf-8")
    (tproj / "src" / "demo" / "features.py").write_text(FEATURES_PY, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tproj / "src"))
    monkeypatch.setenv("PYTHONPATH", str(tproj / "src"))  # MLflow loads it in a subprocess
    import demo.features

    frame, y = _frame()
    model = make_pipeline(
        FunctionTransformer(demo.features.add_area), RandomForestClassifier(n_estimators=3)
    ).fit(frame[["a", "b"]], y)
    with tracking.run() as run:
        capfd.readouterr()
        info = run.log_model(model, input_example=frame[["a", "b"]].head(3))
        out, err = capfd.readouterr()
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"logged model 'model' (sklearn, skops) to run {run.id}" in lines[0]
    names = _requirement_names(info.model_uri)
    assert {"mlflow", "scikit-learn", "pandas", "skops"} <= names, names
    assert not names & {"pytest", "psutil", "fsspec", "pyarrow", "nbconvert", "ipykernel"}, names


class _Installed:
    """A distribution as importlib.metadata sees it, with a PEP 610 direct_url.json."""

    def __init__(self, direct_url: str | None) -> None:
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        return self.direct_url if name == "direct_url.json" else None


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        (  # a generated project's dslc: a commit of the template's git repository
            '{"url": "https://git.example/team/ds-template", "subdirectory": "helpers",'
            ' "vcs_info": {"vcs": "git", "commit_id": "0123abc", "requested_revision": "v1"}}',
            "dslc @ git+https://git.example/team/ds-template@0123abc#subdirectory=helpers",
        ),
        # a folder or a local git clone: a path of this machine only, so the pin stays
        ('{"url": "file:///srv/ds-template/helpers", "dir_info": {}}', "dslc==0.1.0"),
        (
            '{"url": "file:///srv/ds-template", "subdirectory": "helpers",'
            ' "vcs_info": {"vcs": "git", "commit_id": "0123abc"}}',
            "dslc==0.1.0",
        ),
        ('{"url": "file:///home/me/dslc", "dir_info": {"editable": true}}', "dslc==0.1.0"),
        (None, "dslc==0.1.0"),  # from an index
        ("not json", "dslc==0.1.0"),
    ],
)
def test_a_package_installed_from_a_url_is_required_from_it(
    monkeypatch: pytest.MonkeyPatch, direct_url: str | None, expected: str
) -> None:
    import importlib.metadata

    from dslc.tracking import _models

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: _Installed(direct_url))
    assert _models.installed_from("dslc==0.1.0") == expected


def test_an_unknown_package_keeps_its_line() -> None:
    from dslc.tracking import _models

    assert _models.installed_from("no-such-package-here==1.0") == "no-such-package-here==1.0"
    assert _models.installed_from("--index-url https://x") == "--index-url https://x"
