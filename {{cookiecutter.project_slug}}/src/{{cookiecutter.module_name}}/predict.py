"""Batch predictions from the champion model, the same model the HTTP server answers with.

``make predict`` scores the test rows with pandas; ``make predict ENGINE=spark`` scores
them with Spark, as a Spark UDF of the same model. Both write the same predictions dataset.
Where Spark runs (this machine, or a cluster) is set in conf/spark-defaults.conf, and the
Makefile finds Java; this module only asks Spark for its session.
"""

from __future__ import annotations

import argparse

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


def predict_spark(rows: pd.DataFrame, uri: str | None = None) -> pd.Series:
    """The same predictions, computed by Spark's Python workers (in the order of ``rows``).

    ``env_manager="local"``: the workers use this project's environment, the one the model
    was trained in, rather than building one.
    """
    from pyspark.sql import SparkSession  # the optional spark group: only Spark users have it

    frame = SparkSession.builder.getOrCreate().createDataFrame(rows)
    model = uri or tracking.model_uri()
    udf = mlflow.pyfunc.spark_udf(frame.sparkSession, model, env_manager="local")
    scored = frame.withColumn("prediction", udf()).select("prediction").toPandas()
    return pd.Series(scored["prediction"].to_numpy(), index=rows.index, name="prediction")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", choices=("pandas", "spark"), default="pandas")
    engine = parser.parse_args(argv).engine
    tracking.ensure_store()
    champion()
    rows = data.load(TEST_DATASET).drop(columns=[TARGET])
    predictions = predict_spark(rows) if engine == "spark" else predict(rows)
    data.save(rows.assign(prediction=predictions), PREDICTIONS_DATASET)
    log.info("Wrote %d predictions (%s) to %s", len(rows), engine, data.path(PREDICTIONS_DATASET))


if __name__ == "__main__":
    main()
