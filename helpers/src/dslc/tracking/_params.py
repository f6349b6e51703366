"""Params and tags: nested configuration flattened to MLflow's strings, secrets withheld."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..secrets import Redactor
from ._errors import TrackingError, warn
from ._writer import (
    MAX_PARAM_VALUE_LEN,
    MAX_PARAMS_PER_BATCH,
    MAX_TAG_VALUE_LEN,
    RunWriter,
    chunks,
    truncate,
)

WITHHELD_TAG = "dslc.withheld"


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


class ParamsAndTags:
    """The params and tags of one run: what was sent, and what was withheld as secret.

    Preparing is pure (it may run before the run exists); sending goes through a
    :class:`RunWriter`. Every withheld name is listed in the ``dslc.withheld`` tag.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._params: dict[str, str] = {}
        self._withheld: set[str] = set()
        self._withheld_sent = ""  # value of the dslc.withheld tag already on the run

    @property
    def withheld(self) -> frozenset[str]:
        """Names of params and tags withheld as secrets so far."""
        return frozenset(self._withheld)

    def prepare_params(self, params: Mapping[str, Any] | Any, run_name: str) -> dict[str, str]:
        """Flatten and stringify; drop secrets and params already sent with the same value.

        Raises TrackingError when a param was sent before with another value.
        """
        prepared: dict[str, str] = {}
        for key, value in flatten(params).items():
            text = to_str(value)
            if len(text) > MAX_PARAM_VALUE_LEN:
                warn("param %s is longer than MLflow allows; truncated", key)
                text = truncate(text, MAX_PARAM_VALUE_LEN)
            if self._redactor.withhold(key, text):
                self._withheld.add(key)
                continue
            previous = self._params.get(key)
            if previous is not None and previous != text:
                raise TrackingError(
                    f"param {key!r} is already {previous!r:.80} in run {run_name!r}; MLflow "
                    "params cannot change: use another name, a metric, or a new run"
                )
            if previous is None:
                prepared[key] = text
        return prepared

    def filter_tags(self, tags: Mapping[str, Any]) -> dict[str, str]:
        """Stringify and truncate tags, dropping (and noting) secret ones."""
        allowed: dict[str, str] = {}
        for key, value in tags.items():
            text = truncate(to_str(value), MAX_TAG_VALUE_LEN)
            if self._redactor.withhold(key, text):
                self._withheld.add(key)
            else:
                allowed[key] = text
        return allowed

    def start_tags(self, tags: Mapping[str, str]) -> dict[str, str]:
        """``tags`` plus the withheld tag, for ``start_run`` (marks that tag as sent)."""
        result = dict(tags)
        if self._withheld:
            result[WITHHELD_TAG] = self._withheld_sent = self._withheld_text()
        return result

    def send_params(self, writer: RunWriter, prepared: Mapping[str, str]) -> None:
        """Send prepared params in batches, then the updated withheld tag."""
        from mlflow.entities import Param

        for chunk in chunks(list(prepared.items()), MAX_PARAMS_PER_BATCH):
            writer.log_batch(params=[Param(k, v) for k, v in chunk])
            self._params.update(chunk)
        self._sync_withheld(writer)

    def send_tags(self, writer: RunWriter, tags: Mapping[str, Any]) -> None:
        """Filter and send tags, then the updated withheld tag."""
        writer.set_tags(self.filter_tags(tags))
        self._sync_withheld(writer)

    def _withheld_text(self) -> str:
        return truncate(",".join(sorted(self._withheld)), MAX_TAG_VALUE_LEN)

    def _sync_withheld(self, writer: RunWriter) -> None:
        text = self._withheld_text()
        if self._withheld and self._withheld_sent != text:
            writer.set_tags({WITHHELD_TAG: text})
            self._withheld_sent = text
