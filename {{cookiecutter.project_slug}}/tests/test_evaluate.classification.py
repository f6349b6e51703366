"""Figures are built without pyplot state, so a notebook importing them keeps its setup."""

import matplotlib
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from {{ cookiecutter.module_name }}.evaluate import figure, scores


def test_figure_leaves_backend_and_open_figures_alone():
    backend = matplotlib.get_backend()
    open_figures = plt.get_fignums()
    truth = pd.Series(["setosa", "virginica", "virginica"])
    result = figure(truth, pd.Series(["setosa", "setosa", "virginica"]))
    assert isinstance(result, Figure)
    assert result.axes[0].get_title() == "Confusion matrix (test set)"
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == open_figures


def test_scores_are_accuracy_and_macro_f1():
    truth = pd.Series(["a", "b", "b", "a"])
    result = scores(truth, pd.Series(["a", "b", "a", "a"]))
    assert result["accuracy"] == 0.75
    assert 0 < result["f1_macro"] < 1
