"""The model registry: register logged models as versions of a named model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._errors import TrackingError, first_line
from ._store import require_mlflow

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


def register(model_uri: str, name: str, tags: Mapping[str, Any] | None = None) -> ModelVersion:
    """Register the model at ``model_uri`` as a new version of ``name``."""
    mlflow = require_mlflow()
    try:
        version: ModelVersion = mlflow.register_model(
            model_uri, name, tags=dict(tags) if tags else None
        )
    except Exception as exc:
        raise TrackingError(f"cannot register {model_uri} as {name!r}: {first_line(exc)}") from exc
    return version
