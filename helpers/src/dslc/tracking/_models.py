"""Log models to a run with a signature inferred from an input example."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import TrackingError

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo


def log_model(
    model: Any,
    name: str,
    *,
    input_example: Any,
    signature: Any,
    flavor: str,
    **kwargs: Any,
) -> ModelInfo:
    """Log ``model`` with ``mlflow.<flavor>.log_model`` to the active MLflow run."""
    if signature is None and input_example is not None:
        signature = infer_signature(model, input_example)
    module = _flavor(flavor)
    common = {"name": name, "signature": signature, "input_example": input_example}
    if flavor == "pyfunc":
        info: ModelInfo = module.log_model(python_model=model, **common, **kwargs)
    else:
        info = module.log_model(model, **common, **kwargs)
    return info


def _flavor(flavor: str) -> Any:
    try:
        return importlib.import_module(f"mlflow.{flavor}")
    except ImportError as exc:
        raise TrackingError(
            f"unknown or unavailable MLflow flavor {flavor!r} ({exc}); use e.g. 'sklearn' "
            "or 'pyfunc'"
        ) from exc


def infer_signature(model: Any, input_example: Any) -> Any:
    """Signature from the example and, when the model can predict on it, its output."""
    from mlflow.models import infer_signature as mlflow_infer_signature

    output = None
    predict = getattr(model, "predict", None)
    if callable(predict):
        try:
            output = predict(input_example)
        except Exception:  # e.g. a PythonModel's predict(context, model_input): no output
            output = None
    return mlflow_infer_signature(input_example, output)
