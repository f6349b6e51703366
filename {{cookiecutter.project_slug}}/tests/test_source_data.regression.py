"""Data tests: the assumptions the pipeline makes about its source data.

Each check says which assumption broke, on which rows, and why it matters (dslc.checks).
"""

import pytest
from dslc import checks

from {{ cookiecutter.module_name }}.dataset import TARGET, load_source

MEASUREMENTS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


@pytest.fixture(scope="module")
def source():
    return load_source()


def test_source_has_the_model_columns_and_no_missing_values(source):
    checks.has_columns(source, [*MEASUREMENTS, TARGET], why="the model reads these columns")
    checks.no_missing(source, why="missing values would silently drop training rows")


@pytest.mark.parametrize("column", MEASUREMENTS)
def test_measurements_are_centred_and_scaled(source, column):
    checks.in_range(
        source, column, min=-1, max=1, why="raw units here mean the source stopped scaling them"
    )


def test_progression_is_a_positive_score(source):
    checks.in_range(source, TARGET, min=0, max=1000, why="the score runs from 25 to 346")
