"""Unit tests of the feature step: fast, no files, no tracking."""

import pandas as pd

from {{ cookiecutter.module_name }}.features import TARGET, build_features, split


def _raw(rows: int = 40) -> pd.DataFrame:
    species = ["setosa", "versicolor"] * (rows // 2)
    return pd.DataFrame(
        {
            "sepal length (cm)": [5.0 + i / 10 for i in range(rows)],
            "sepal width (cm)": [3.0] * rows,
            "petal length (cm)": [1.5] * rows,
            "petal width (cm)": [0.2] * rows,
            TARGET: species,
        }
    )


def test_build_features_names_columns_and_adds_areas():
    frame = build_features(_raw())
    assert {"sepal_length", "petal_width", "petal_area", "sepal_area"} <= set(frame.columns)
    assert frame["petal_area"].iloc[0] == 1.5 * 0.2


def test_split_is_stratified_and_repeatable():
    frame = build_features(_raw())
    train, test = split(frame)
    assert len(train) + len(test) == len(frame)
    assert set(test[TARGET]) == {"setosa", "versicolor"}
    again, _ = split(frame)
    pd.testing.assert_frame_equal(train, again)
