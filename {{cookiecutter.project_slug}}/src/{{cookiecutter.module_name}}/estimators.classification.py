"""The ready estimators, by the names that params.yaml's ``train.estimator`` takes.

``train.estimators`` in params.yaml holds each one's arguments; a run uses, and logs,
only the chosen one's. To add an estimator: a line in ``ESTIMATORS`` and its arguments
in params.yaml.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ESTIMATORS: dict[str, type] = {
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
}
# Linear models fit better, and faster, on features of one scale; trees do not care.
SCALED = {"logistic_regression"}


def make_estimator(name: str, params: dict, seed: int) -> BaseEstimator:
    """The estimator ``name`` with ``params``, seeded; stops in one line on a wrong name or
    argument."""
    if name not in ESTIMATORS:
        known = ", ".join(ESTIMATORS)
        raise SystemExit(f"error: unknown estimator {name!r} (params.yaml): choose one of {known}")
    try:
        estimator = ESTIMATORS[name](random_state=seed, **params)
    except TypeError as error:  # a misspelt or unknown argument
        raise SystemExit(f"error: estimator {name!r} (params.yaml): {error}") from None
    return make_pipeline(StandardScaler(), estimator) if name in SCALED else estimator
