"""Get the raw data: the diabetes data bundled with scikit-learn, so no download.

Replace ``load_source`` with your own acquisition (a database query, an export, an
fsspec URL) and keep the rest: raw data is written once and never edited afterwards.
The names of the datasets (``data/catalog.yml``) and of the target column live here.
"""

from __future__ import annotations

import pandas as pd
from dslc import data, get_logger
from sklearn.datasets import load_diabetes

RAW_DATASET = "diabetes_raw"
TRAIN_DATASET = "diabetes_train"
TEST_DATASET = "diabetes_test"
PREDICTIONS_DATASET = "diabetes_predictions"
TARGET = "progression"
# A numeric target: the split draws rows at random, without strata.
STRATIFY = False

log = get_logger(__name__)


def load_source() -> pd.DataFrame:
    """The source data: ten baseline measurements of 442 patients (age, sex, bmi, bp and
    six blood serum values s1...s6, each centred and scaled by scikit-learn) and the
    disease progression one year later."""
    frame = load_diabetes(as_frame=True).frame
    return frame.rename(columns={"target": TARGET})


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
