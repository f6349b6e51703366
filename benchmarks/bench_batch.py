"""Benchmark: batch scoring of 1,000,000 rows with pandas and with Spark (local mode).

Run by hand from the repository root (Spark needs Java 17+ and pyspark):

    uv run --project helpers --with pyspark==4.2.1 python benchmarks/bench_batch.py [--rows N]

The model is the generated project's example in miniature (raw iris columns -> features
-> scaler -> logistic regression), logged, registered and promoted through dslc in a
throwaway project. N synthetic rows (iris-like measurements, seeded) are scored from
``models:/bench@champion`` two ways, as ``make predict`` and ``make predict ENGINE=spark``
do:

    (a) pandas: ``mlflow.pyfunc.load_model(uri).predict(rows)`` on the whole DataFrame;
    (b) Spark: ``mlflow.pyfunc.spark_udf(spark, uri, env_manager="local")`` on a Spark
        DataFrame made from the same rows, in local mode on every core; timed twice,
        writing to Spark's no-op sink (scoring only) and collecting the predictions back
        to pandas (what ``make predict ENGINE=spark`` does).

Spark's session start-up is timed apart. The two engines must agree on every row.
Prints rows per second of each and the ratio. Always exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _model import RAW_COLUMNS, iris, make_project, train_champion


def synthetic_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """Rows drawn around each iris species' means, so every class is predicted."""
    rows, target = iris()
    generator = np.random.default_rng(seed)
    species = generator.integers(0, 3, n)
    means = rows.groupby(target.to_numpy()).mean().to_numpy()
    spread = rows.groupby(target.to_numpy()).std().to_numpy()
    values = means[species] + generator.standard_normal((n, 4)) * spread[species]
    return pd.DataFrame(np.clip(values, 0.1, None), columns=RAW_COLUMNS)


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def spark_session():
    # pyspark 4.2 warns that pandas 3 is not fully supported; the predictions are
    # compared with pandas' below. The workers take the filter from the environment.
    quiet = "ignore:PySpark does not yet fully support pandas:FutureWarning"
    os.environ["PYTHONWARNINGS"] = quiet
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # The workers import the model's feature function, as a project's workers import the
    # project's installed package.
    os.environ["PYTHONPATH"] = str(Path(__file__).parent)
    return (
        SparkSession.builder.master("local[*]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    import mlflow

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as folder:
        root = Path(folder)
        make_project(root)
        os.chdir(root)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        uri = train_champion(root)
        rows = synthetic_rows(args.rows)

        model = mlflow.pyfunc.load_model(uri)
        model.predict(rows.head(100))  # warm-up
        by_pandas, pandas_seconds = timed(lambda: model.predict(rows))

        spark, start_seconds = timed(spark_session)
        frame = spark.createDataFrame(rows).cache()
        frame.count()  # materialize: converting pandas to Spark is not scoring
        # As the project scores: the signature names the prediction column and its type.
        udf = mlflow.pyfunc.spark_udf(spark, uri, env_manager="local")
        scored = frame.withColumn("prediction", udf())
        # Warm-up on every row: each of Spark's Python workers loads the model once.
        scored.write.format("noop").mode("overwrite").save()
        _, sink_seconds = timed(lambda: scored.write.format("noop").mode("overwrite").save())
        collected, collect_seconds = timed(lambda: scored.select("prediction").toPandas())
        spark.stop()

    agree = bool((collected["prediction"].to_numpy() == np.asarray(by_pandas)).all())
    n = args.rows
    print(f"{n:,} rows, {os.cpu_count()} cores; Spark start-up {start_seconds:.1f} s (apart)")
    print(f"  pandas (pyfunc predict)          {n / pandas_seconds:12,.0f} rows/s")
    print(f"  Spark UDF, no-op sink            {n / sink_seconds:12,.0f} rows/s")
    print(f"  Spark UDF, collected to pandas   {n / collect_seconds:12,.0f} rows/s")
    print(
        f"Spark / pandas rows per second: {pandas_seconds / sink_seconds:.2f}x (sink), "
        f"{pandas_seconds / collect_seconds:.2f}x (collected); predictions agree: {agree}"
    )


if __name__ == "__main__":
    main()
