"""Batch predictions from the champion model, the same model the HTTP server answers with.

``make predict`` scores the test rows with pandas; ``make predict ENGINE=spark`` runs
``predict_spark``, which scores them with Spark. Both write the same predictions dataset.
"""

from __future__ import annotations

from collections.abc import Callable

import mlflow
import pandas as pd
from dslc import data, get_logger, tracking

from {{ cookiecutter.module_name }}.dataset import PREDICTIONS_DATASET, TARGET, TEST_DATASET

log = get_logger(__name__)


def champion():
    """The registered version that is champion; stops in one line when there is none yet."""
    version = tracking.champion()
    if version is None:
        uri = tracking.model_uri()
        raise SystemExit(f"error: no champion model yet ({uri}): run `make train` first")
    return version


def predict(rows: pd.DataFrame, uri: str | None = None) -> pd.Series:
    """Predictions for raw rows, from the model loaded as the server loads it (pyfunc)."""
    model = mlflow.pyfunc.load_model(uri or tracking.model_uri())
    return pd.Series(model.predict(rows), index=rows.index, name="prediction")


def main(score: Callable[[pd.DataFrame], pd.Series] = predict, engine: str = "pandas") -> None:
    """Score the test rows with the champion through ``score`` and save them."""
    tracking.ensure_store()
    champion()
    rows = data.load(TEST_DATASET).drop(columns=[TARGET])
    data.save(rows.assign(prediction=score(rows)), PREDICTIONS_DATASET)
    log.info("Wrote %d predictions (%s) to %s", len(rows), engine, data.path(PREDICTIONS_DATASET))


if __name__ == "__main__":
    main()
