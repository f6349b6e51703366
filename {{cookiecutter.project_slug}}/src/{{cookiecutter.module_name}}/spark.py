"""Score with Spark: the champion model as a Spark UDF, on this machine or on a cluster.

Spark is optional. ``make predict ENGINE=spark`` installs the ``spark`` dependency group
(pyspark) on first use; a project that never scores on Spark never downloads it. Spark
runs on Java, which comes from the OS (Debian/Ubuntu: ``openjdk-17-jre-headless``).

``SPARK_MASTER`` (in ``.env``) names a cluster; unset, Spark runs in local mode on this
machine's cores. Spark's Python workers run ``PYSPARK_PYTHON``, by default this
project's interpreter, so they import the same packages as the driver.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from dslc import config

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JAVA_PACKAGE = "openjdk-17-jre-headless"
LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties")


class SparkUnavailable(RuntimeError):
    """Spark cannot start here; the message says what to install."""


def java() -> str:
    """The ``java`` Spark will start: ``$JAVA_HOME/bin/java``, else the first on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        command = Path(home, "bin", "java")
        if not command.is_file():
            raise SparkUnavailable(
                f"JAVA_HOME={home} has no bin/java: point it at Java 17 or newer, or unset it"
            )
        return str(command)
    command = shutil.which("java")
    if command is None:
        raise SparkUnavailable(
            "Spark needs Java 17 or newer and none is installed: install it "
            f"(Debian/Ubuntu: sudo apt-get install {JAVA_PACKAGE}) or set JAVA_HOME"
        )
    return command


def session() -> SparkSession:
    """The Spark session: on ``SPARK_MASTER`` (environment or ``.env``), else local."""
    java()  # one clear line now, rather than a screenful of Java errors later
    _quiet_known_noise()
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(
            "pyspark is not installed: `make predict ENGINE=spark` installs it, as does "
            "`make setup SPARK=1`"
        ) from None
    config.load_env()
    logging.getLogger("py4j").setLevel(logging.WARNING)  # connection chatter at INFO
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(config.project_name())
    master = os.environ.get("SPARK_MASTER")
    if master:
        builder = builder.master(master)
    else:  # local mode (or spark-submit's --master): keep Spark on the loopback interface
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return (
        builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG_CONFIG}")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def score(frame: DataFrame, uri: str) -> DataFrame:
    """``frame`` with a ``prediction`` column from the model at ``uri``.

    The model runs in Spark's Python workers as a pandas UDF, fed the columns that its
    signature names (the raw columns). ``env_manager="local"``: the workers use this
    project's environment, the one the model was trained in, rather than building one.
    """
    import mlflow

    # The Spark type of the predictions comes from the model's signature (dslc declares
    # them as one named column, e.g. text for class labels).
    udf = mlflow.pyfunc.spark_udf(frame.sparkSession, uri, env_manager="local")
    return frame.withColumn("prediction", udf())


def predict(rows: pd.DataFrame, uri: str) -> pd.Series:
    """Predictions for pandas rows, computed on Spark, in the order of ``rows``."""
    spark = session()
    scored = score(spark.createDataFrame(rows), uri).select("prediction").toPandas()
    return pd.Series(scored["prediction"].to_numpy(), index=rows.index, name="prediction")


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def _quiet_known_noise() -> None:
    """Silence two warnings that do not apply here, and nothing else.

    pyspark 4.2 warns that it does not fully support pandas 3: the template's tests score
    the same rows with pandas, Spark and the server and require identical answers. MLflow
    recommends conda over env_manager="local", which is deliberate (see ``score``).
    """
    message = "PySpark does not yet fully support pandas"
    warnings.filterwarnings("ignore", message=message, category=FutureWarning)
    # Spark's Python workers are separate processes: they take the filter from here.
    ignore = f"ignore:{message}:FutureWarning"
    current = os.environ.get("PYTHONWARNINGS", "")
    if ignore not in current:
        os.environ["PYTHONWARNINGS"] = f"{current},{ignore}" if current else ignore
    logging.getLogger("mlflow.pyfunc").addFilter(
        _DropMessage('Calling `spark_udf()` with `env_manager="local"`')
    )
