"""Turn nested configuration into MLflow's flat string params and tags."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

# MLflow's limits (mlflow.utils.validation), repeated here so importing this module does
# not import mlflow. They have been stable across MLflow 2.x and 3.x.
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_PARAM_VALUE_LEN = 6000
MAX_TAG_VALUE_LEN = 8000

T = TypeVar("T")


def as_mapping(obj: Any) -> Mapping[str, Any] | None:
    """Return ``obj`` as a mapping when it is one (dict, dataclass, pydantic model)."""
    if isinstance(obj, Mapping):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    dump = getattr(obj, "model_dump", None)  # pydantic v2, without importing it
    if callable(dump) and not isinstance(obj, type):
        result = dump()
        if isinstance(result, Mapping):
            return result
    return None


def flatten(obj: Any, prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Flatten nested mappings/dataclasses: ``{"model": {"C": 1}}`` -> ``{"model.C": 1}``.

    Lists and other values are kept whole (they become one param, e.g. ``"[1, 2]"``): a
    list of layer sizes reads better as one value than as ``layers.0``, ``layers.1``...
    """
    mapping = as_mapping(obj)
    if mapping is None:
        raise TypeError(f"expected a mapping or dataclass, got {type(obj).__name__}")
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if as_mapping(value) is not None:
            flat.update(flatten(value, name, sep))
        else:
            flat[name] = value
    return flat


def to_str(value: Any) -> str:
    """Stringify a param or tag value the way a reader expects (``True``, ``0.1``, ``None``)."""
    return value if isinstance(value, str) else str(value)


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Yield consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
