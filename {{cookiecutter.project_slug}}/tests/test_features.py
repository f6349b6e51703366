"""Unit tests of the feature code and of the model built around it: fast, no files."""

import pandas as pd

from {{ cookiecutter.module_name }}.features import TARGET, add_features, split
from {{ cookiecutter.module_name }}.train import PARAMS, make_model


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


def test_the_model_takes_raw_rows():
    raw = _raw()
    rows, target = raw.drop(columns=[TARGET]), raw[TARGET]
    model = make_model(PARAMS).fit(rows, target)
    assert list(model.predict(rows.head(2))) == ["setosa", "virginica"]


def test_split_is_stratified_and_repeatable():
    frame = _raw()
    train, test = split(frame)
    assert len(train) + len(test) == len(frame)
    assert set(test[TARGET]) == {"setosa", "virginica"}
    again, _ = split(frame)
    pd.testing.assert_frame_equal(train, again)
