"""params.yaml chooses among ready estimators, each trains on raw rows, and
cross-validation reports a mean and a spread per score: fast, no files written."""

import pytest

from {{ cookiecutter.module_name }}.dataset import TARGET, load_source
from {{ cookiecutter.module_name }}.estimators import ESTIMATORS, make_estimator
from {{ cookiecutter.module_name }}.train import cross_validate, load_params, make_model


@pytest.fixture(scope="module")
def rows():
    source = load_source()
    return source.drop(columns=[TARGET]), source[TARGET]


def test_params_yaml_chooses_a_ready_estimator_and_gives_each_its_arguments():
    params = load_params()
    assert params["estimator"] in ESTIMATORS
    assert set(params["estimators"]) == set(ESTIMATORS)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_each_ready_estimator_trains_on_raw_rows(rows, name):
    X, y = rows
    model = make_model({**load_params(), "estimator": name}).fit(X, y)
    assert len(model.predict(X.head(3))) == 3


def test_an_unknown_estimator_stops_in_one_line_naming_the_ready_ones():
    with pytest.raises(SystemExit) as stop:
        make_estimator("no_such_estimator", {}, seed=0)
    message = str(stop.value)
    assert "\n" not in message and all(name in message for name in ESTIMATORS)


def test_cross_validation_gives_a_mean_and_a_spread_per_score(rows):
    X, y = rows
    scores = cross_validate({**load_params(), "cv_folds": 2}, X, y)
    names = {key.rsplit("_", 1)[0] for key in scores}
    assert scores.keys() == {f"{name}_{stat}" for name in names for stat in ("mean", "std")}
    assert all(name.startswith("cv_") for name in names)
