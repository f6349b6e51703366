"""How a classifier is scored: the folds of cross-validation, the scores and a figure."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold

# Where the run logs the figure, and where `make train` saves a copy (reports/).
FIGURE = "figures/confusion_matrix.png"


def folds(n_splits: int, seed: int) -> StratifiedKFold:
    """Cross-validation folds that keep each class's share of rows."""
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def scores(y_true: pd.Series, y_pred: pd.Series) -> dict[str, float]:
    """Accuracy and macro F1: the metrics the Ask's success criteria are written in."""
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro")),
    }


def figure(y_true: pd.Series, y_pred: pd.Series) -> Figure:
    """A confusion matrix to read which classes the model mixes up.

    Built on a bare ``Figure`` rather than through pyplot, so it needs no display and
    leaves the caller's backend and open figures (a notebook's, say) alone.
    """
    result = Figure(figsize=(5, 4), layout="tight")
    axes = result.subplots()
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, ax=axes, colorbar=False)
    axes.set_title("Confusion matrix (test set)")
    return result
