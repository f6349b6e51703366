"""Unit tests of the feature code and of the split: fast, no files."""

import pandas as pd

from {{ cookiecutter.module_name }}.dataset import TARGET
from {{ cookiecutter.module_name }}.features import add_features
from {{ cookiecutter.module_name }}.split import split

MEASUREMENTS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def _raw(rows: int = 40) -> pd.DataFrame:
    frame = pd.DataFrame({name: [i / 100 for i in range(rows)] for name in MEASUREMENTS})
    return frame.assign(**{TARGET: [100.0 + i for i in range(rows)]})


def test_add_features_keeps_the_raw_columns_and_adds_bmi_times_bp():
    raw = _raw().drop(columns=[TARGET])
    frame = add_features(raw)
    assert list(frame.columns[: raw.shape[1]]) == list(raw.columns)
    assert frame["bmi_x_bp"].iloc[3] == 0.03 * 0.03


def test_split_is_repeatable():
    frame = _raw()
    train, test = split(frame)
    assert len(train) + len(test) == len(frame)
    again, _ = split(frame)
    pd.testing.assert_frame_equal(train, again)
