"""Data tests: the assumptions the pipeline makes about its source data.

Each check says which assumption broke, on which rows, and why it matters (dslc.checks).
"""

import pytest
from dslc import checks

from {{ cookiecutter.module_name }}.dataset import TARGET, load_source

MEASUREMENTS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def source():
    return load_source()


def test_source_has_the_model_columns_and_no_missing_values(source):
    checks.has_columns(source, [*MEASUREMENTS, TARGET], why="the model reads these columns")
    checks.no_missing(source, why="missing values would silently drop training rows")


@pytest.mark.parametrize("column", MEASUREMENTS)
def test_measurements_are_positive_centimetres(source, column):
    checks.assume(
        source,
        f"{column} is positive",
        lambda frame: frame[column] > 0,
        why="a non-positive length means a unit or entry error",
    )
    checks.in_range(source, column, max=100, why="lengths above 1 m suggest millimetres, not cm")
