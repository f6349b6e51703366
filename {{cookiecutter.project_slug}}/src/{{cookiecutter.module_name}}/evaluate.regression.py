"""How a regressor is scored: the folds of cross-validation, the scores and a figure."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import (
    PredictionErrorDisplay,
    mean_absolute_error,
    r2_score,
    root_mean_squared_error,
)
from sklearn.model_selection import KFold

# Where the run logs the figure, and where `make train` saves a copy (reports/).
FIGURE = "figures/predicted_vs_actual.png"


def folds(n_splits: int, seed: int) -> KFold:
    """Cross-validation folds of shuffled rows."""
    return KFold(n_splits=n_splits, shuffle=True, random_state=seed)


def scores(y_true: pd.Series, y_pred: pd.Series) -> dict[str, float]:
    """RMSE and MAE in the target's units, and R²: the metrics the Ask's success criteria
    are written in."""
    return {
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


def figure(y_true: pd.Series, y_pred: pd.Series) -> Figure:
    """Predicted against actual values: points off the diagonal are the model's errors.

    Built on a bare ``Figure`` rather than through pyplot, so it needs no display and
    leaves the caller's backend and open figures (a notebook's, say) alone.
    """
    result = Figure(figsize=(5, 4), layout="tight")
    axes = result.subplots()
    PredictionErrorDisplay.from_predictions(
        y_true, y_pred, kind="actual_vs_predicted", ax=axes, scatter_kwargs={"s": 12}
    )
    axes.set_title("Predicted against actual (test set)")
    return result
