"""Batch predictions from the champion model, the same model the HTTP server answers with.

``make predict`` scores the test rows with pandas; ``make predict ENGINE=spark`` scores
them with Spark (see ``spark``). Both write the same predictions dataset.
"""

from __future__ import annotations

import argparse
import os

import pandas as pd
from dslc import data, get_logger, tracking

from {{ cookiecutter.module_name }}.features import TARGET, TEST_DATASET

PREDICTIONS_DATASET = "iris_predictions"
ENGINES = ("pandas", "spark")

log = get_logger(__name__)


def model_uri() -> str:
    """The model production uses, for batch and online scoring alike.

    ``models:/<model>@champion``, the model named by ``[tool.dslc] model`` in
    pyproject.toml. ``make train`` moves the champion alias to a new version only when it
    scores better; ``make promote VERSION=n`` moves it by hand.
    """
    return tracking.model_uri()


def champion():
    """The registered version that is champion; stops in one line when there is none yet."""
    version = tracking.champion()
    if version is None:
        raise SystemExit(f"error: no champion model yet ({model_uri()}): run `make train` first")
    return version


def predict(rows: pd.DataFrame, uri: str | None = None) -> pd.Series:
    """Predictions for raw rows, from the model loaded as the server loads it (pyfunc)."""
    import mlflow

    model = mlflow.pyfunc.load_model(uri or model_uri())
    return pd.Series(model.predict(rows), index=rows.index, name="prediction")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", choices=ENGINES, default="pandas")
    args = parser.parse_args(argv)
    # A progress bar per model file says nothing worth reading in a batch job's log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    tracking.ensure_store()
    champion()
    rows = data.load(TEST_DATASET).drop(columns=[TARGET])
    if args.engine == "spark":
        from {{ cookiecutter.module_name }} import spark

        try:
            predictions = spark.predict(rows, model_uri())
        except spark.SparkUnavailable as exc:
            raise SystemExit(f"error: {exc}") from None
    else:
        predictions = predict(rows)
    data.save(rows.assign(prediction=predictions), PREDICTIONS_DATASET)
    log.info(
        "Wrote %d predictions (%s) to %s",
        len(rows),
        args.engine,
        data.path(PREDICTIONS_DATASET),
    )


if __name__ == "__main__":
    main()
