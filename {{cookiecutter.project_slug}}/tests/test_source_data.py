"""Data tests: the assumptions the pipeline makes about its source data."""

from {{ cookiecutter.module_name }}.dataset import load_source


def test_source_has_the_expected_columns_and_no_missing_values():
    frame = load_source()
    assert list(frame.columns[-1:]) == ["species"]
    assert frame.notna().all().all(), "missing values would silently drop training rows"


def test_measurements_are_positive_centimetres():
    frame = load_source()
    measurements = frame.drop(columns=["species"])
    assert (measurements > 0).all().all(), "a non-positive length means a unit or entry error"
    assert (measurements < 100).all().all(), "lengths above 1 m suggest millimetres, not cm"
