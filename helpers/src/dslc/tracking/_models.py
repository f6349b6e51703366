"""Log models to a run: any scikit-learn estimator, with a signature from an example.

How a scikit-learn model is serialized, and what that means for security
------------------------------------------------------------------------
MLflow 3 writes scikit-learn models with skops and refuses, at save time, any type that
is not on skops' default allow-list: a ``RandomForestClassifier`` fails on
``sklearn.tree._tree.Tree``, a pipeline calling the project's feature function on
``<module>.features.add_area``. dslc therefore decides per model:

1. **skops, trusting the types the model is made of.** dslc serializes the model with
   skops, asks skops which types it would refuse (``skops.io.get_untrusted_types``),
   checks that it loads back with exactly those, and passes them to MLflow as
   ``skops_trusted_types``. MLflow writes that list into the model's ``MLmodel`` file and
   loads with it. Tree ensembles, pipelines, ``ColumnTransformer``, ``OneHotEncoder`` and
   ``FunctionTransformer`` calling a function of the project's package take this path.
2. **cloudpickle, when skops cannot hold the model faithfully**: objects skops cannot
   serialize (estimators keeping pandas objects, lambdas) and anything defined in
   ``__main__`` (a notebook or a script), which skops records by name only, so it would
   not load in another process; cloudpickle stores such code by value.

Security meaning, for both: loading a model can run code from the model's artifacts.
The skops allow-list is read from the model's own ``MLmodel``, so it guards against a
tampered model file, not against whoever can write the artifact store; a cloudpickle
file runs arbitrary code by design. The artifact store (the project's ``mlartifacts`` or
the team server's) is therefore a trust boundary: load models only from a store whose
write access you control, never a model file from elsewhere. What skops adds is an
artifact that is not a pickle and whose types can be listed before loading:
``skops.io.get_untrusted_types(file="model.skops")``. An explicit
``serialization_format=`` or ``skops_trusted_types=`` passed to ``log_model`` wins.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._errors import TrackingError

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

# Messages MLflow logs on every save that say nothing to a dslc user, by logger name:
# uv environments have no pip, and cloudpickle is a decision taken above.
_NOISE = {
    "mlflow.utils.environment": "Failed to resolve installed pip version",
    "mlflow.sklearn": "Saving scikit-learn models in the pickle or cloudpickle format",
}


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
    module = _flavor(flavor)
    with _quiet():
        if signature is None and input_example is not None:
            signature = infer_signature(model, input_example)
        common = {"name": name, "signature": signature, "input_example": input_example}
        if flavor == "pyfunc":
            info: ModelInfo = module.log_model(python_model=model, **common, **kwargs)
        else:
            if flavor == "sklearn" and not {"serialization_format", "skops_trusted_types"} & set(
                kwargs
            ):
                kwargs.update(sklearn_serialization(model))
            info = module.log_model(model, **common, **kwargs)
    return info


def sklearn_serialization(model: Any) -> dict[str, Any]:
    """``log_model`` arguments that serialize ``model`` (see the module docstring)."""
    try:
        import skops.io
    except ImportError:  # mlflow-skinny comes without skops
        return {"serialization_format": "cloudpickle"}
    try:
        data = skops.io.dumps(model)
        trusted = skops.io.get_untrusted_types(data=data)
        skops.io.loads(data, trusted=trusted)
    except Exception:  # skops cannot represent some object of the model
        return {"serialization_format": "cloudpickle"}
    if any(t.startswith("__main__.") for t in trusted):
        return {"serialization_format": "cloudpickle"}
    return {"serialization_format": "skops", "skops_trusted_types": trusted}


class _DropMessage(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self._start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self._start)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the known-useless messages of one ``log_model`` call, nothing else."""
    filters = [(logging.getLogger(name), _DropMessage(start)) for name, start in _NOISE.items()]
    for logger, drop in filters:
        logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            # mlflow.models.utils compares DataFrame columns to a range (pandas 3 warns).
            warnings.filterwarnings("ignore", message="Operation with range is deprecated")
            yield
    finally:
        for logger, drop in filters:
            logger.removeFilter(drop)


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
