"""The model registry: versions, and the alias (``champion``) that serving loads."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import config
from ._errors import TrackingError, failing, first_line, info, quiet_mlflow, require_mlflow
from ._run import active
from ._store import client

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

CHAMPION = "champion"


@dataclass(frozen=True)
class Promotion:
    """What :func:`promote_if_better` did: ``promoted``, and ``reason`` in one line."""

    promoted: bool
    reason: str
    version: ModelVersion
    previous: ModelVersion | None  # the champion before, None when there was none

    def __str__(self) -> str:
        return self.reason


def model_name(name: str | None = None) -> str:
    name = config.settings().get("model") if name is None else name
    if not isinstance(name, str) or not name.strip():
        raise TrackingError(
            f'no registered model name: pass name=..., or set model = "<name>" under '
            f"[tool.dslc] in {config.project_root() / 'pyproject.toml'}"
        )
    return name.strip()


def declared_metric() -> tuple[str, bool]:
    """``(metric, higher_is_better)`` of ``[tool.dslc]``."""
    table, where = config.settings(), config.project_root() / "pyproject.toml"
    metric, higher = table.get("metric"), table.get("higher_is_better", True)
    if not isinstance(metric, str) or not metric.strip():
        raise TrackingError(
            f'no metric decides the champion: set metric = "<metric name>" under '
            f"[tool.dslc] in {where}, or pass metric=..."
        )
    if not isinstance(higher, bool):
        raise TrackingError(
            f"higher_is_better under [tool.dslc] in {where} must be true or false, not {higher!r}"
        )
    return metric.strip(), higher


def model_uri(name: str | None = None, alias: str = CHAMPION) -> str:
    """``models:/<name>@<alias>``: what serving and batch scoring load."""
    return f"models:/{model_name(name)}@{_alias(alias)}"


def register(
    model: Any, name: str | None = None, *, tags: Mapping[str, Any] | None = None
) -> ModelVersion:
    """Register a ``ModelInfo`` or model URI as a new version of ``name``."""
    uri = getattr(model, "model_uri", model)
    if not isinstance(uri, str) or ":/" not in uri:
        raise TrackingError(
            f"cannot register {model!r:.80}: pass the ModelInfo from run.log_model, or a "
            "'models:/...' or 'runs:/<run id>/<name>' URI"
        )
    registered, store = model_name(name), client()  # client() points mlflow at the store
    what = f"cannot register {uri} as {registered!r} in {store.tracking_uri}"
    with failing(what), quiet_mlflow():  # MLflow prints two lines; dslc says it in one
        version: ModelVersion = require_mlflow().register_model(
            uri, registered, tags={k: str(v) for k, v in tags.items()} if tags else None
        )
    origin = f"run {version.run_id}" if version.run_id else uri
    info("registered model %r version %s from %s", registered, version.version, origin)
    return version


def promote(version: Any, name: str | None = None, *, alias: str = CHAMPION) -> ModelVersion:
    """Point ``alias`` at ``version`` of ``name``; returns that ``ModelVersion``."""
    registered, store = model_name(name), client()
    found = _version(store, registered, version)
    with failing(f"cannot move {alias!r} of {registered!r} to version {found.version}"):
        store.set_registered_model_alias(registered, _alias(alias), found.version)
    return _version(store, registered, found.version)


def champion(name: str | None = None, alias: str = CHAMPION) -> ModelVersion | None:
    """The version ``alias`` points at, or None (no such alias, or no such model)."""
    from mlflow.exceptions import MlflowException

    registered, store = model_name(name), client()
    try:
        return store.get_model_version_by_alias(registered, _alias(alias))
    except MlflowException as exc:  # MLflow says INVALID_PARAMETER_VALUE for a missing alias
        if _missing(exc) or exc.error_code == "INVALID_PARAMETER_VALUE":
            return None
        raise TrackingError(f"cannot read model {registered!r}: {first_line(exc)}") from exc


def promote_if_better(
    version: Any,
    name: str | None = None,
    *,
    metric: str | None = None,
    higher_is_better: bool | None = None,
    alias: str = CHAMPION,
) -> Promotion:
    """Move ``alias`` to ``version`` when its run beats the champion's on ``metric``."""
    metric, higher = declared_metric() if metric is None else (metric, True)
    if higher_is_better is not None:
        higher = higher_is_better
    if (current := active()) is not None:  # the metrics to compare may still be buffered
        current.flush()
    registered, store = model_name(name), client()
    new = _version(store, registered, version)
    old = champion(registered, alias)
    new_value = _run_metric(store, registered, new, metric)
    if old is None:
        promote(new.version, registered, alias=alias)
        reason = f"the first {alias} ({metric} = {new_value:.6g})"
        return Promotion(True, f"version {new.version} of {registered!r} is {reason}", new, None)
    if str(old.version) == str(new.version):
        reason = f"version {new.version} of {registered!r} is already {alias}"
        return Promotion(False, reason, new, old)
    old_value = _run_metric(store, registered, old, metric)
    # NaN never wins, and anything beats a NaN champion; a tie keeps the champion.
    better = new_value > old_value if higher else new_value < old_value
    if not math.isnan(new_value) and (math.isnan(old_value) or better):
        promote(new.version, registered, alias=alias)
        reason = (
            f"version {old.version} -> {new.version} ({metric} {old_value:.6g} -> {new_value:.6g})"
        )
        return Promotion(True, f"{alias} of {registered!r}: {reason}", new, old)
    reason = (
        f"{alias} of {registered!r} stays version {old.version}: version {new.version} has "
        f"{metric} = {new_value:.6g}, not {'higher' if higher else 'lower'} than {old_value:.6g}"
    )
    return Promotion(False, reason, new, old)


def _alias(alias: str) -> str:
    if not isinstance(alias, str) or not alias.strip():
        raise TrackingError("the alias is empty; use e.g. 'champion'")
    return alias.strip()


def _missing(exc: Exception) -> bool:
    code = str(getattr(exc, "error_code", ""))
    return "RESOURCE_DOES_NOT_EXIST" in code or "NOT_FOUND" in code


def _version(store: MlflowClient, name: str, version: Any) -> ModelVersion:
    """The ``ModelVersion`` for a ModelVersion, a number or a numeric string."""
    from mlflow.exceptions import MlflowException

    number = str(getattr(version, "version", version)).strip()
    if not number.isdigit() or int(number) < 1:
        raise TrackingError(f"model version must be a whole number from 1, not {number!r}")
    try:
        return store.get_model_version(name, number)
    except MlflowException as exc:
        if _missing(exc):
            raise TrackingError(_not_found(store, name, number)) from exc
        raise TrackingError(f"cannot read version {number} of {name!r}: {first_line(exc)}") from exc


def _not_found(store: MlflowClient, name: str, number: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        store.get_registered_model(name)
    except MlflowException:
        return (
            f"no registered model {name!r} in {store.tracking_uri}; register "
            "a version first (tracking.register)"
        )
    versions = sorted(int(v.version) for v in store.search_model_versions(f"name = '{name}'"))
    listed = ", ".join(map(str, versions[-10:]))
    return f"model {name!r} has no version {number}; its latest versions: {listed}"


def _run_metric(store: MlflowClient, name: str, version: ModelVersion, metric: str) -> float:
    if not version.run_id:
        raise TrackingError(
            f"version {version.version} of {name!r} has no run, so no {metric!r} to compare; "
            "promote it by hand (dslc promote)"
        )
    with failing(f"cannot read run {version.run_id} of version {version.version} of {name!r}"):
        metrics = store.get_run(version.run_id).data.metrics
    if metric not in metrics:
        known = ", ".join(sorted(metrics)[:10]) or "none"
        raise TrackingError(
            f"run {version.run_id} of version {version.version} of {name!r} has no metric "
            f"{metric!r} (its metrics: {known}); log it in the run, or fix metric under "
            "[tool.dslc]"
        )
    return float(metrics[metric])
