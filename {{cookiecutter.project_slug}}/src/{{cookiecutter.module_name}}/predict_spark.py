"""The same batch predictions as ``predict``, computed by Spark: the champion as a Spark UDF.

``make predict ENGINE=spark`` runs it with the optional spark group (pyspark) and Java.
Where Spark runs (this machine's cores, or a cluster) is set in conf/spark-defaults.conf,
which the Makefile points Spark at; this module only asks Spark for its session.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from dslc import tracking
from pyspark.sql import SparkSession

from {{ cookiecutter.module_name }} import predict


def predict_spark(rows: pd.DataFrame, uri: str | None = None) -> pd.Series:
    """Predictions for raw rows from Spark's Python workers (in the order of ``rows``).

    ``env_manager="local"``: the workers use this project's environment, the one the model
    was trained in, rather than building one.
    """
    frame = SparkSession.builder.getOrCreate().createDataFrame(rows)
    model = uri or tracking.model_uri()
    udf = mlflow.pyfunc.spark_udf(frame.sparkSession, model, env_manager="local")
    scored = frame.withColumn("prediction", udf()).select("prediction").toPandas()
    return pd.Series(scored["prediction"].to_numpy(), index=rows.index, name="prediction")


if __name__ == "__main__":
    predict.main(predict_spark, engine="spark")
