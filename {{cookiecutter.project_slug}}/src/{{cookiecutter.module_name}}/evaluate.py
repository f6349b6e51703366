"""Scores and figures for a fitted classifier."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def scores(y_true: pd.Series, y_pred: pd.Series) -> dict[str, float]:
    """Accuracy and macro F1: the metrics the Ask's success criteria are written in."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro")),
    }


def confusion_figure(y_true: pd.Series, y_pred: pd.Series) -> Figure:
    """A confusion matrix to read which classes the model mixes up.

    Built on a bare ``Figure`` rather than through pyplot, so it needs no display and
    leaves the caller's backend and open figures (a notebook's, say) alone.
    """
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    figure = Figure(figsize=(5, 4), layout="tight")
    axes = figure.subplots()
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, ax=axes, colorbar=False)
    axes.set_title("Confusion matrix (test set)")
    return figure
