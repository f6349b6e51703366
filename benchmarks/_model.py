"""The model the scoring benchmarks serve: the generated project's example, in miniature.

A scikit-learn pipeline that takes the raw iris columns, adds the petal and sepal areas
(as the project's ``features.add_features`` does), scales and fits a logistic regression.
It is logged and registered through dslc in a throwaway project and promoted to
``champion``, so the benchmarks load ``models:/bench@champion`` as ``make predict`` and
``make serve`` do.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd

RAW_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def add_features(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.assign(
        petal_area=rows["petal_length"] * rows["petal_width"],
        sepal_area=rows["sepal_length"] * rows["sepal_width"],
    )


def iris() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    rows = bunch.data.set_axis(RAW_COLUMNS, axis=1)
    return rows, bunch.target.map(dict(enumerate(bunch.target_names)))


def make_project(root: Path) -> None:
    """A throwaway dslc project (a git repository, as real projects are)."""
    (root / "pyproject.toml").write_text(
        '[project]\nname = "bench"\nversion = "0"\n\n'
        '[tool.dslc]\nmodel = "bench"\nmetric = "accuracy"\nhigher_is_better = true\n',
        encoding="utf-8",
    )
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(root)], check=True)


def train_champion(root: Path) -> str:
    """Fit, log, register and promote the model in the project at ``root``; its URI."""
    from dslc import tracking
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rows, target = iris()
    model = make_pipeline(
        FunctionTransformer(add_features), StandardScaler(), LogisticRegression(max_iter=500)
    ).fit(rows, target)
    tracking.ensure_store(root)
    with tracking.run(name="bench") as run:
        run.log_metrics({"accuracy": float((model.predict(rows) == target).mean())})
        # The model carries this file (its feature function), as a project's model carries
        # the project's package: it loads wherever its requirements are installed.
        info = run.log_model(model, name="model", input_example=rows.head(5), code_paths=[__file__])
    tracking.promote_if_better(tracking.register(info))
    return tracking.model_uri()
