"""Get the raw data: the iris measurements bundled with scikit-learn, so no download.

Replace ``load_source`` with your own acquisition (a database query, an export, an
fsspec URL) and keep the rest: raw data is written once and never edited afterwards.
The names of the datasets (``data/catalog.yml``) and of the target column live here.
"""

from __future__ import annotations

import pandas as pd
from dslc import data, get_logger
from sklearn.datasets import load_iris

RAW_DATASET = "iris_raw"
TRAIN_DATASET = "iris_train"
TEST_DATASET = "iris_test"
PREDICTIONS_DATASET = "iris_predictions"
TARGET = "species"
# Each class keeps its share of rows in the train and test sets.
STRATIFY = True

log = get_logger(__name__)


def load_source() -> pd.DataFrame:
    """The source data: four measurements in cm (sepal_length, ...) and the species."""
    bunch = load_iris(as_frame=True)
    # "sepal length (cm)" -> "sepal_length": the names every later step, and every
    # request to the served model, use.
    frame = bunch.frame.rename(columns=lambda name: name.removesuffix(" (cm)").replace(" ", "_"))
    frame = frame.rename(columns={"target": TARGET})
    frame[TARGET] = frame[TARGET].map(dict(enumerate(bunch.target_names)))
    return frame


def main() -> None:
    """Write the raw dataset once; later runs keep the copy already on disk."""
    target = data.path(RAW_DATASET)
    if target.exists():
        log.info("Raw data already present at %s; leaving it untouched", target)
        return
    frame = load_source()
    # data/raw is immutable: acquiring it is the one place that may write there.
    data.save(frame, RAW_DATASET, force=True)
    log.info("Saved %d rows to %s", len(frame), target)


if __name__ == "__main__":
    main()
