"""Turn raw measurements into model inputs and split them into train and test sets."""

from __future__ import annotations

import pandas as pd
from dslc import data, get_logger

from {{ cookiecutter.module_name }}.dataset import RAW_DATASET

TRAIN_DATASET = "iris_train"
TEST_DATASET = "iris_test"
TARGET = "species"
TEST_SIZE = 0.25
SEED = 42

log = get_logger(__name__)


def build_features(raw: pd.DataFrame) -> pd.DataFrame:
    """Snake-case column names and add the petal and sepal areas."""
    frame = raw.rename(columns=lambda name: name.replace(" (cm)", "").replace(" ", "_"))
    frame["petal_area"] = frame["petal_length"] * frame["petal_width"]
    frame["sepal_area"] = frame["sepal_length"] * frame["sepal_width"]
    return frame


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified, seeded split so every run sees the same test rows."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        frame, test_size=TEST_SIZE, random_state=SEED, stratify=frame[TARGET]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def main() -> None:
    train, test = split(build_features(data.load(RAW_DATASET)))
    data.save(train, TRAIN_DATASET)
    data.save(test, TEST_DATASET)
    log.info("Features: %d train rows, %d test rows", len(train), len(test))


if __name__ == "__main__":
    main()
