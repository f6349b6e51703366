"""{{ (cookiecutter.project_name ~ ": " ~ cookiecutter.description) | docstring }}

The example pipeline, one step per module, each runnable as ``python -m`` and from Make:

- ``dataset``: get the raw data (``make data``)
- ``features``: turn raw data into model inputs (``make data``)
- ``train`` and ``evaluate``: fit, score and register a model, tracked in MLflow (``make train``)
- ``predict``: batch predictions from the registered model (``make predict``)
- ``serve``: the same model over HTTP (``make serve``)

Paths, datasets, logging and tracking come from dslc, so notebooks use the same code.
"""

__version__ = "0.1.0"
