"""Feature code, written once: the training pipeline and the logged model both run it.

``add_features`` turns raw rows (the columns of the raw dataset, without the target) into
model inputs. ``train`` puts it at the head of the model as a scikit-learn step
(``transformer()``), so the logged model takes raw rows: batch scoring, Spark and the
HTTP server all send the raw columns, and no caller re-implements the features.

The model runs this code whenever it scores: after changing it, retrain (``make train``)
so that the champion and the code agree. The model carries this package with it (MLflow's
``code_paths``) and imports this module wherever it runs, in environments built from the
model's own requirements: so it imports only what scoring needs (pandas, scikit-learn).
"""

from __future__ import annotations

import pandas as pd
from sklearn.preprocessing import FunctionTransformer


def add_features(rows: pd.DataFrame) -> pd.DataFrame:
    """The raw measurements plus body mass index times blood pressure, an interaction
    that linear models cannot make up themselves."""
    return rows.assign(bmi_x_bp=rows["bmi"] * rows["bp"])


def transformer() -> FunctionTransformer:
    """``add_features`` as the first step of a scikit-learn pipeline."""
    return FunctionTransformer(add_features)
