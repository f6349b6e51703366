"""Batch predictions from the registered model, with the code `mlflow models serve` uses."""

from __future__ import annotations

import argparse

import pandas as pd
from dslc import data, get_logger, tracking

from {{ cookiecutter.module_name }}.features import TARGET, TEST_DATASET
from {{ cookiecutter.module_name }}.train import MODEL_NAME

PREDICTIONS_DATASET = "iris_predictions"

log = get_logger(__name__)


def model_uri(version: str = "latest") -> str:
    return f"models:/{MODEL_NAME}/{version}"


def predict(features: pd.DataFrame, version: str = "latest") -> pd.Series:
    """Load the registered model as a pyfunc (as the model server does) and predict."""
    import mlflow

    tracking.ensure_store()
    model = mlflow.pyfunc.load_model(model_uri(version))
    return pd.Series(model.predict(features), index=features.index, name="prediction")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", default="latest", help="registered model version")
    args = parser.parse_args(argv)

    rows = data.load(TEST_DATASET)
    features = rows.drop(columns=[TARGET])
    result = features.assign(prediction=predict(features, args.version))
    data.save(result, PREDICTIONS_DATASET)
    log.info("Wrote %d predictions to %s", len(result), data.path(PREDICTIONS_DATASET))


if __name__ == "__main__":
    main()
