"""Unit tests of the feature code and of the split: fast, no files."""

import pandas as pd

from {{ cookiecutter.module_name }}.dataset import TARGET
from {{ cookiecutter.module_name }}.features import add_features
from {{ cookiecutter.module_name }}.split import split


def _raw(rows: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sepal_length": [5.0 + i / 10 for i in range(rows)],
            "sepal_width": [3.0] * rows,
            "petal_length": [1.5 + (i % 2) * 3 for i in range(rows)],
            "petal_width": [0.2 + (i % 2) for i in range(rows)],
            TARGET: ["setosa", "virginica"] * (rows // 2),
        }
    )


def test_add_features_keeps_the_raw_columns_and_adds_areas():
    raw = _raw().drop(columns=[TARGET])
    frame = add_features(raw)
    assert list(frame.columns[: raw.shape[1]]) == list(raw.columns)
    assert frame["petal_area"].iloc[0] == 1.5 * 0.2
    assert frame["sepal_area"].iloc[0] == 5.0 * 3.0


def test_split_is_stratified_and_repeatable():
    frame = _raw()
    train, test = split(frame)
    assert len(train) + len(test) == len(frame)
    assert (test[TARGET].value_counts() == len(test) // 2).all()
    again, _ = split(frame)
    pd.testing.assert_frame_equal(train, again)
