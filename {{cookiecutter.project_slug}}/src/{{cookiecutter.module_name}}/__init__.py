"""{{ (cookiecutter.project_name ~ ": " ~ cookiecutter.description) | docstring }}

The example pipeline, one step per module; ``make`` runs the steps:

- ``dataset``: get the raw data (``make data``); ``split``: train and test rows
- ``features``: turn raw rows into model inputs, the model's first step
- ``estimators``: the ready estimators that params.yaml chooses from
- ``train`` and ``evaluate``: fit, score and register a model, tracked in MLflow (``make train``)
- ``predict``: batch predictions from the champion model (``make predict``), the model that
  ``make serve`` answers with over HTTP

Paths, datasets, logging and tracking come from dslc, so notebooks use the same code.
"""

__version__ = "0.1.0"
