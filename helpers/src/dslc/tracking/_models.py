"""Log models to a run: any scikit-learn estimator (skops, else cloudpickle: see
helpers/README.md, Models), with a signature and requirements inferred."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from ._errors import TrackingError, first_line, info, quiet_mlflow, warn

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

# The name of the output column of a model predicting one value per row.
PREDICTION = "prediction"

# Arguments by which the caller decides the model's environment: dslc then infers nothing.
_ENVIRONMENT_ARGS = frozenset({"pip_requirements", "extra_pip_requirements", "conda_env"})
# Packages that libraries import whenever installed, so that MLflow's inference (what loading
# the model imports) lists them though no model needs them; MLflow drops setuptools likewise.
NOT_MODEL_REQUIREMENTS = {
    "pytest": "sklearn.utils._testing imports it when installed",
    "psutil": "opentelemetry, under MLflow's tracing, imports it when installed",
}


def log_model(model: Any, name: str, flavor: str, **kwargs: Any) -> ModelInfo:
    """Log ``model`` with ``mlflow.<flavor>.log_model`` to the active MLflow run; ``kwargs``
    hold its ``input_example`` and ``signature`` (None infers it from the example)."""
    try:
        module = importlib.import_module(f"mlflow.{flavor}")
    except ImportError as exc:
        raise TrackingError(
            f"unknown or unavailable MLflow flavor {flavor!r} ({exc}); use e.g. 'sklearn' "
            "or 'pyfunc'"
        ) from exc
    # MLflow would export the whole uv project (notebook and report tools included)
    # whenever it infers requirements; registering prints two lines of its own.
    with quiet_mlflow(), mock.patch.dict(os.environ, {"MLFLOW_UV_AUTO_DETECT": "false"}):
        if kwargs["signature"] is None and (example := kwargs["input_example"]) is not None:
            kwargs["signature"] = infer_signature(model, example)
        # pyfunc takes the model as python_model=; the other flavors as their first argument
        model_args = ((), {"python_model": model}) if flavor == "pyfunc" else ((model,), {})
        chosen = kwargs.keys() & {"serialization_format", "skops_trusted_types"}
        if flavor == "sklearn" and not chosen:
            kwargs.update(sklearn_serialization(model))
        if not _ENVIRONMENT_ARGS & set(kwargs):
            requirements = model_requirements(module, model_args, flavor, kwargs)
            if requirements is not None:
                kwargs["pip_requirements"] = requirements
        logged: ModelInfo = module.log_model(*model_args[0], name=name, **model_args[1], **kwargs)
    how = ", ".join(filter(None, [flavor, kwargs.get("serialization_format")]))
    registered = ""
    if (model_name := kwargs.get("registered_model_name")) is not None:
        registered = f"; registered model {model_name!r} version {logged.registered_model_version}"
    info("logged model %r (%s) to run %s%s", name, how, logged.run_id, registered)
    return logged


def model_requirements(
    module: Any, model_args: Any, flavor: str, arguments: dict[str, Any]
) -> list[str] | None:
    """MLflow's inferred requirements (of a scratch copy) minus NOT_MODEL_REQUIREMENTS, or None."""
    from mlflow.models import infer_pip_requirements

    accepted = inspect.signature(module.save_model).parameters
    save_args = {k: v for k, v in arguments.items() if k in accepted}
    save_args["pip_requirements"] = []  # a placeholder: inferring it is the point
    with tempfile.TemporaryDirectory(prefix="dslc-model-") as scratch:
        path = str(Path(scratch) / "model")
        try:
            module.save_model(*model_args[0], path=path, **model_args[1], **save_args)
            found = infer_pip_requirements(path, getattr(module, "FLAVOR_NAME", flavor))
        except Exception as exc:
            warn(
                "could not infer the model's requirements (%s); MLflow's defaults apply",
                first_line(exc),
            )
            return None
    return [kept for line in found if (kept := installed_from(line)) is not None]


def installed_from(line: str) -> str | None:
    """``name==version`` as ``name @ URL`` for a package installed from a URL (PEP 610),
    such as dslc from a git commit; editable, index and ``file:`` installs keep the pin.
    None for a package of NOT_MODEL_REQUIREMENTS."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        requirement = Requirement(line)
    except InvalidRequirement:  # e.g. an index URL line: keep it as it is
        return line
    if canonicalize_name(requirement.name) in NOT_MODEL_REQUIREMENTS:
        return None
    try:
        text = importlib.metadata.distribution(requirement.name).read_text("direct_url.json")
        origin = json.loads(text) if text else None
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return line
    if not isinstance(origin, dict) or origin.get("dir_info", {}).get("editable"):
        return line
    url = str(origin.get("url", ""))
    if url.startswith("file:"):
        warn(
            f"the model requires {line}, installed here from {url}: other machines need it "
            "on their package index"
        )
        return line
    vcs = origin.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs") and vcs.get("commit_id"):
        url = f"{vcs['vcs']}+{url}@{vcs['commit_id']}"
    if origin.get("subdirectory"):
        url += f"#subdirectory={origin['subdirectory']}"
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return f"{requirement.name}{extras} @ {url}" if url else line


def sklearn_serialization(model: Any) -> dict[str, Any]:
    """``log_model`` arguments that serialize ``model`` (see the module docstring)."""
    try:
        import skops.io

        data = skops.io.dumps(model)
        trusted = skops.io.get_untrusted_types(data=data)
        skops.io.loads(data, trusted=trusted)
    except Exception:  # no skops (mlflow-skinny), or it cannot represent part of the model
        return {"serialization_format": "cloudpickle"}
    if any(t.startswith("__main__.") for t in trusted):  # not loadable elsewhere
        return {"serialization_format": "cloudpickle"}
    return {"serialization_format": "skops", "skops_trusted_types": trusted}


def infer_signature(model: Any, input_example: Any) -> Any:
    """Signature of the example and, when the model predicts on it, of its output."""
    from mlflow.models import ModelSignature
    from mlflow.models import infer_signature as mlflow_infer_signature

    signature = mlflow_infer_signature(input_example)
    try:
        output = model.predict(input_example)
    except Exception:  # no predict, or e.g. a PythonModel's predict(context, model_input)
        return signature
    with warnings.catch_warnings():
        # MLflow's hint that integer columns cannot hold missing values is for inputs only.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        outputs = mlflow_infer_signature(named_output(output)).inputs
    return ModelSignature(inputs=signature.inputs, outputs=outputs)


def named_output(output: Any) -> Any:
    """1-D predictions as a ``prediction`` column, which ``spark_udf`` maps to a scalar."""
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.Series):
        return output.to_frame(PREDICTION if output.name is None else output.name)
    if isinstance(output, np.ndarray) and output.ndim == 1:
        return pd.DataFrame({PREDICTION: output})
    return output
