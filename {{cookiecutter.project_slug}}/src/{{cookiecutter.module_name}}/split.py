"""Split the raw rows into train and test sets (``make data``), the same rows every run."""

from __future__ import annotations

import pandas as pd
from dslc import data, get_logger
from sklearn.model_selection import train_test_split

from {{ cookiecutter.module_name }}.dataset import RAW_DATASET, STRATIFY, TARGET, TEST_DATASET, TRAIN_DATASET

TEST_SIZE = 0.25
SEED = 42

log = get_logger(__name__)


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded split, stratified by the target when ``dataset.STRATIFY`` says so."""
    train, test = train_test_split(
        frame, test_size=TEST_SIZE, random_state=SEED, stratify=frame[TARGET] if STRATIFY else None
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def main() -> None:
    train, test = split(data.load(RAW_DATASET))
    data.save(train, TRAIN_DATASET)
    data.save(test, TEST_DATASET)
    log.info("Split the raw rows: %d for training, %d for testing", len(train), len(test))


if __name__ == "__main__":
    main()
