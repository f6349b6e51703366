"""Figures are built without pyplot state, so a notebook importing them keeps its setup."""

import matplotlib
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from {{ cookiecutter.module_name }}.evaluate import figure, scores


def test_figure_leaves_backend_and_open_figures_alone():
    backend = matplotlib.get_backend()
    open_figures = plt.get_fignums()
    result = figure(pd.Series([100.0, 150.0, 200.0]), pd.Series([110.0, 140.0, 230.0]))
    assert isinstance(result, Figure)
    assert result.axes[0].get_title() == "Predicted against actual (test set)"
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == open_figures


def test_scores_are_rmse_mae_and_r2():
    result = scores(pd.Series([1.0, 2.0, 3.0, 4.0]), pd.Series([1.0, 2.0, 3.0, 6.0]))
    assert result["rmse"] == pytest.approx(1.0)
    assert result["mae"] == pytest.approx(0.5)
    assert result["r2"] == pytest.approx(1 - 4 / 5)
