"""Params and tags: nested configuration flattened to MLflow's strings, secrets withheld."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .._secrets import Redactor, scrub_urls
from ._errors import TrackingError
from ._writer import RunWriter

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


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings/dataclasses: ``{"model": {"C": 1}}`` -> ``{"model.C": 1}``.

    Lists and other values are kept whole (they become one param, e.g. ``"[1, 2]"``): a
    list of layer sizes reads better as one value than as ``layers.0``, ``layers.1``...
    """
    mapping = as_mapping(obj)
    if mapping is None:
        raise TypeError(f"expected a mapping or dataclass, got {type(obj).__name__}")
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if as_mapping(value) is not None:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


class ParamsAndTags:
    """The params and tags of one run: what was sent, and what was withheld as secret.

    Preparing is pure (it may run before the run exists); sending goes through a
    :class:`RunWriter`. Every withheld name is listed in the ``dslc.withheld`` tag.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._params: dict[str, str] = {}
        self.withheld: set[str] = set()
        self._withheld_sent = ""  # value of the dslc.withheld tag already on the run

    def prepare_params(self, params: Mapping[str, Any] | Any, run_name: str) -> dict[str, str]:
        """Flatten and stringify; drop secrets and params already sent with the same value.

        Raises TrackingError when a param was sent before with another value.
        """
        prepared: dict[str, str] = {}
        for key, text in self.filter_tags(flatten(params)).items():
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
        """Stringify, dropping (and noting) secret ones; URL credentials become ``***``.

        Checked on the whole value, before MLflow cuts a long one.
        """
        allowed: dict[str, str] = {}
        for key, value in tags.items():
            text = value if isinstance(value, str) else str(value)
            if self._redactor.withhold(key, text):
                self.withheld.add(self._redactor.scrub(key))  # the name may hold a secret
            else:
                allowed[key] = scrub_urls(text)
        return allowed

    def start_tags(self, tags: Mapping[str, str]) -> dict[str, str]:
        """``tags`` plus the withheld tag, for ``start_run`` (marks that tag as sent)."""
        if not self.withheld:
            return dict(tags)
        self._withheld_sent = ",".join(sorted(self.withheld))
        return {**tags, WITHHELD_TAG: self._withheld_sent}

    def send_params(self, writer: RunWriter, prepared: Mapping[str, str]) -> None:
        """Send prepared params, then the updated withheld tag."""
        from mlflow.entities import Param

        if prepared:
            writer.log_batch(params=[Param(k, v) for k, v in prepared.items()])
            self._params.update(prepared)
        self._sync_withheld(writer)

    def send_tags(self, writer: RunWriter, tags: Mapping[str, Any]) -> None:
        """Filter and send tags, then the updated withheld tag."""
        writer.set_tags(self.filter_tags(tags))
        self._sync_withheld(writer)

    def _sync_withheld(self, writer: RunWriter) -> None:
        text = ",".join(sorted(self.withheld))
        if self.withheld and self._withheld_sent != text:
            writer.set_tags({WITHHELD_TAG: text})
            self._withheld_sent = text
