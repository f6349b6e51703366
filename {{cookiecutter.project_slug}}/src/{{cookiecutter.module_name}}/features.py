"""Feature code, written once: the training pipeline and the logged model both run it.

``add_features`` turns raw rows (the columns of the raw dataset, without the target) into
model inputs. ``train`` puts it at the head of the model as a scikit-learn step
(``transformer()``), so the logged model takes raw rows: batch scoring, Spark and the
HTTP server all send the raw columns, and no caller re-implements the features.

The model runs this code whenever it scores: after changing it, retrain (``make train``)
so that the champion and the code agree. The model carries this package with it (MLflow's
``code_paths``), and loading it imports this module wherever it runs, in environments
built from the model's own requirements: so this module imports only what scoring needs
(pandas) at the top, and dslc and the data steps inside the functions that use them.

``python -m {{ cookiecutter.module_name }}.features`` splits the raw rows into train and test sets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from sklearn.preprocessing import FunctionTransformer

TRAIN_DATASET = "iris_train"
TEST_DATASET = "iris_test"
TARGET = "species"
TEST_SIZE = 0.25
SEED = 42


def add_features(rows: pd.DataFrame) -> pd.DataFrame:
    """The raw measurements plus the petal and sepal areas."""
    return rows.assign(
        petal_area=rows["petal_length"] * rows["petal_width"],
        sepal_area=rows["sepal_length"] * rows["sepal_width"],
    )


def transformer() -> FunctionTransformer:
    """``add_features`` as the first step of a scikit-learn pipeline."""
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(add_features)


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified, seeded split so every run sees the same test rows."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        frame, test_size=TEST_SIZE, random_state=SEED, stratify=frame[TARGET]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def main() -> None:
    from dslc import data, get_logger

    from {{ cookiecutter.module_name }}.dataset import RAW_DATASET

    train, test = split(data.load(RAW_DATASET))
    data.save(train, TRAIN_DATASET)
    data.save(test, TEST_DATASET)
    log = get_logger(__name__)
    log.info("Split the raw rows: %d for training, %d for testing", len(train), len(test))


if __name__ == "__main__":
    main()
