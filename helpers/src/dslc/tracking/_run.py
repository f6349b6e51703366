"""``with tracking.run(...) as run:``: one MLflow run, buffered, tagged and safe to fail."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config
from ._context import environment_tags, git_tags, run_name, source
from ._datasets import dataset_input, display_name, fingerprint_tag
from ._errors import NoActiveRunError, TrackingError
from ._params import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VALUE_LEN,
    MAX_PARAMS_PER_BATCH,
    MAX_TAG_VALUE_LEN,
    chunks,
    flatten,
    to_str,
    truncate,
)
from ._secrets import Redactor, secret_values
from ._store import ensure_store, experiment_id, require_mlflow

if TYPE_CHECKING:
    from mlflow.entities import RunInfo
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.models.model import ModelInfo
    from mlflow.tracking import MlflowClient

    from ..events import DatasetUse

WITHHELD_TAG = "dslc.withheld"
ERROR_TAG = "dslc.error"
PARENT_TAG = "mlflow.parentRunId"
MAX_ERROR_LEN = 1000
# Buffered metrics are also sent when this old, so a long training shows progress in the UI.
FLUSH_INTERVAL_S = 15.0

# Runs whose `with` block is executing, innermost last, per thread (MLflow's own stack of
# active runs is per thread too).
_local = threading.local()


def _live() -> list[Run]:
    stack: list[Run] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def active() -> Run | None:
    """Return the innermost dslc run whose ``with`` block is executing, or None."""
    stack = _live()
    return stack[-1] if stack else None


def _log() -> logging.Logger:
    from ..logging import get_logger  # lazily: configuring logging is a side effect

    return get_logger("dslc.tracking")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _number(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise TrackingError(
            f"metric {key!r} must be a number, got {type(value).__name__} {value!r:.50}"
        ) from exc


class Run:
    """An MLflow run opened by :func:`dslc.tracking.run`; use it as a context manager.

    Metrics are buffered and sent in batches (at the end, on errors, every
    :data:`FLUSH_INTERVAL_S` seconds and whenever a full batch is waiting). Params and tags
    are sent at once, minus anything that looks secret.
    """

    def __init__(
        self,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        experiment: str | None = None,
        nested: bool | None = None,
    ) -> None:
        self._requested_name = name
        self._initial_params = params
        self._initial_tags = tags
        self._experiment = experiment
        self._nested = nested
        self._state = "new"  # new -> running -> ended
        self._id: str | None = None
        self._name: str | None = None
        self._experiment_id: str | None = None
        self._parent_id: str | None = None
        self._parent_run: Run | None = None
        self._live_children = 0
        self._buffer: list[tuple[str, float, int, int]] = []
        self._lock = threading.Lock()  # guards the buffer and the small sets below
        self._flush_lock = threading.Lock()  # one flush at a time, keeps metric order
        self._last_flush = time.monotonic()
        self._params: dict[str, str] = {}
        self._withheld: set[str] = set()
        self._withheld_sent = ""  # value of the dslc.withheld tag already on the run
        self._datasets: set[tuple[str, str | None, str, str]] = set()
        self._models: dict[str, ModelInfo] = {}
        self._unsubscribe: Any = None
        self._root = Path()
        self._store_uri = ""
        self._redactor = Redactor()
        self._client: MlflowClient | None = None

    # -- identity -------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The MLflow run id."""
        if self._id is None:
            raise NoActiveRunError("this run has not started; use it as `with tracking.run():`")
        return self._id

    @property
    def name(self) -> str:
        """The run name (readable default: ``<script or notebook>-<YYYYmmdd-HHMMSS>``)."""
        return self._name or (self._requested_name or "")

    @property
    def experiment_id(self) -> str:
        """Id of the experiment holding the run."""
        self.id  # noqa: B018 - raises when not started
        return str(self._experiment_id)

    @property
    def parent_id(self) -> str | None:
        """Id of the run this one is nested under, or None."""
        return self._parent_id

    @property
    def tracking_uri(self) -> str:
        """The tracking URI the run was logged to."""
        return self._store_uri

    @property
    def info(self) -> RunInfo:
        """Fresh ``mlflow.entities.RunInfo`` of the run (status, times, artifact URI)."""
        return self._mlflow_client().get_run(self.id).info

    @property
    def withheld(self) -> frozenset[str]:
        """Names of params and tags withheld as secrets so far."""
        return frozenset(self._withheld)

    def __repr__(self) -> str:
        return f"<dslc Run {self.name!r} id={self._id} state={self._state}>"

    # -- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> Run:
        if self._state != "new":
            raise TrackingError("a tracking.run() can be entered once; call tracking.run() again")
        self._start()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        try:
            self._finish(exc)
        except Exception as close_exc:
            if exc is None:
                raise
            # Never hide the body's own exception behind a tracking hiccup.
            _log().warning("could not close run %s cleanly: %s", self.name, close_exc)
        return False

    def _start(self) -> None:
        mlflow = require_mlflow()
        root = config.project_root()
        config.load_env(root)
        self._root = root
        self._store_uri = ensure_store(root)
        self._redactor = Redactor(secret_values(root / ".env"))
        exp_id = experiment_id(self._experiment, root, self._store_uri)
        parent = self._resolve_parent(mlflow)
        src = source(root)
        self._name = self._requested_name or run_name(src.stem)
        params = self._prepare_params(self._initial_params or {})
        tags = self._start_tags(root, src)
        try:
            active_run = mlflow.start_run(
                experiment_id=exp_id,
                run_name=self._name,
                nested=parent is not None,
                parent_run_id=parent,
                tags=tags,
            )
        except Exception as exc:
            raise TrackingError(
                f"cannot start a run on {self._store_uri}: {_first_line(exc)}"
            ) from exc
        self._id = active_run.info.run_id
        self._experiment_id, self._parent_id = exp_id, parent
        self._enter_live()
        try:
            self._send_params(params)
        except BaseException as exc:  # __exit__ will not run: close the run here
            self._finish(exc)
            raise

    def _resolve_parent(self, mlflow: Any) -> str | None:
        """Decide whether the new run nests, and end a stale active run."""
        current = mlflow.active_run()
        enclosing = active()
        if enclosing is not None:
            if self._nested is False:
                raise TrackingError(
                    f"run {enclosing.name!r} is active; leave its `with` block first, or "
                    "drop nested=False to nest under it"
                )
            self._parent_run = enclosing
            return current.info.run_id if current is not None else enclosing.id
        if current is None:
            return None
        if self._nested:  # explicitly asked to nest under a run started outside dslc
            return str(current.info.run_id)
        self._end_stale(mlflow)
        return None

    @staticmethod
    def _end_stale(mlflow: Any) -> None:
        """End runs left active outside any live ``with`` (e.g. a notebook cell raised)."""
        while (stale := mlflow.active_run()) is not None:
            _log().warning(
                "ending stale MLflow run %s (%s), left active outside any `with "
                "tracking.run()` (e.g. by a notebook cell that raised); marked KILLED",
                stale.info.run_id,
                stale.info.run_name,
            )
            mlflow.end_run("KILLED")

    def _start_tags(self, root: Path, src: Any) -> dict[str, str]:
        tags = {**environment_tags(root, config.project_name(root), src), **git_tags(root)}
        tags = {k: truncate(v, MAX_TAG_VALUE_LEN) for k, v in tags.items()}
        tags = {k: v for k, v in tags.items() if not self._redactor.leaks(v)}
        tags.update(self._filter_tags(self._initial_tags or {}))
        if self._withheld:
            tags[WITHHELD_TAG] = self._withheld_sent = self._withheld_text()
        return tags

    def _enter_live(self) -> None:
        from .. import events

        self._state = "running"
        _live().append(self)
        if self._parent_run is not None:
            self._parent_run._live_children += 1
        self._unsubscribe = events.subscribe(self._on_dataset)

    def _leave_live(self) -> None:
        self._state = "ended"
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        stack = _live()
        if self in stack:
            stack.remove(self)
        if self._parent_run is not None:
            self._parent_run._live_children -= 1

    def _finish(self, exc: BaseException | None) -> None:
        """Flush, record any error, set the final status, leave the live stack."""
        if self._state != "running":
            return
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            exc = None  # sys.exit(0) inside the block is a normal end
        status = "FINISHED"
        if exc is not None:
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        flush_error: TrackingError | None = None
        try:
            if self._unsubscribe is not None:  # no dataset events while closing
                self._unsubscribe()
                self._unsubscribe = None
            try:
                self.flush()
            except TrackingError as err:
                flush_error = err
            error = exc if exc is not None else flush_error
            if error is not None:
                status = "FAILED" if status == "FINISHED" else status
                self._record_error(error)
            self._terminate(status)
        finally:
            self._leave_live()
        if flush_error is not None:
            raise flush_error

    def _record_error(self, error: BaseException) -> None:
        text = self._redactor.scrub(" ".join(f"{type(error).__name__}: {error}".split()))
        try:
            self._send_tags({ERROR_TAG: truncate(text, MAX_ERROR_LEN)})
        except Exception as exc:  # the status still has to be set
            _log().warning("could not record the error of run %s: %s", self.name, exc)

    def _terminate(self, status: str) -> None:
        mlflow = require_mlflow()
        # Close runs started inside this one with plain mlflow and left open.
        while (top := mlflow.active_run()) is not None and top.info.run_id != self.id:
            if not self._is_descendant(top.data.tags.get(PARENT_TAG)):
                break
            _log().warning("ending run %s, left open inside run %s", top.info.run_id, self.name)
            mlflow.end_run("KILLED")
        top = mlflow.active_run()
        if top is not None and top.info.run_id == self.id:
            mlflow.end_run(status)
        else:  # the user ended it (or it was never on MLflow's stack): still set our status
            self._mlflow_client().set_terminated(self.id, status)

    def _is_descendant(self, parent_id: str | None) -> bool:
        for _ in range(50):  # bounded walk up the parent chain
            if parent_id is None:
                return False
            if parent_id == self.id:
                return True
            parent_id = self._mlflow_client().get_run(parent_id).data.tags.get(PARENT_TAG)
        return False

    # -- metrics --------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Buffer one metric value; ``step`` defaults to 0 as in MLflow."""
        self._require_running()
        entry = (key, _number(key, value), int(time.time() * 1000), int(step or 0))
        with self._lock:
            self._buffer.append(entry)
            due = len(self._buffer) >= MAX_METRICS_PER_BATCH
        if due or time.monotonic() - self._last_flush > FLUSH_INTERVAL_S:
            self.flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffer several metrics at one step (same timestamp)."""
        self._require_running()
        now, at = int(time.time() * 1000), int(step or 0)
        entries = [(k, _number(k, v), now, at) for k, v in metrics.items()]
        with self._lock:
            self._buffer.extend(entries)
            due = len(self._buffer) >= MAX_METRICS_PER_BATCH
        if due or time.monotonic() - self._last_flush > FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> int:
        """Send buffered metrics now, in batches of MLflow's limit; return how many.

        On failure the unsent metrics stay buffered (a later flush retries them).
        """
        if self._id is None:
            return 0
        from mlflow.entities import Metric

        with self._flush_lock:
            with self._lock:
                pending, self._buffer = self._buffer, []
            sent = 0
            try:
                for chunk in chunks(pending, MAX_METRICS_PER_BATCH):
                    metrics = [Metric(k, v, ts, step) for k, v, ts, step in chunk]
                    self._mlflow_client().log_batch(self._id, metrics=metrics, synchronous=True)
                    sent += len(chunk)
            except Exception as exc:
                with self._lock:
                    self._buffer[:0] = pending[sent:]
                raise TrackingError(
                    f"could not send {len(pending) - sent} metrics of run {self.name!r} to "
                    f"{self._store_uri} ({_first_line(exc)}); they stay buffered"
                ) from exc
            finally:
                self._last_flush = time.monotonic()
        return sent

    # -- params and tags ------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any] | Any) -> None:
        """Log params; nested mappings/dataclasses are flattened (``model.C``).

        Values are stringified. Secret-looking names and secret values are withheld and
        named in the ``dslc.withheld`` tag. Re-logging a param with the same value is a
        no-op; with a different value it raises (MLflow params are immutable).
        """
        self._require_running()
        self._send_params(self._prepare_params(params))

    def log_param(self, key: str, value: Any) -> None:
        """Log one param (see :meth:`log_params`)."""
        self.log_params({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (stringified), withholding secrets like :meth:`log_params`."""
        self._require_running()
        self._send_tags(self._filter_tags(tags))
        self._sync_withheld_tag()

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag (see :meth:`set_tags`)."""
        self.set_tags({key: value})

    def _prepare_params(self, params: Mapping[str, Any] | Any) -> dict[str, str]:
        prepared: dict[str, str] = {}
        for key, value in flatten(params).items():
            text = to_str(value)
            if len(text) > MAX_PARAM_VALUE_LEN:
                _log().warning("param %s is longer than MLflow allows; truncated", key)
                text = truncate(text, MAX_PARAM_VALUE_LEN)
            if self._redactor.withhold(key, text):
                self._withheld.add(key)
                continue
            previous = self._params.get(key)
            if previous is not None and previous != text:
                raise TrackingError(
                    f"param {key!r} is already {previous!r:.80} in run {self.name!r}; MLflow "
                    "params cannot change: use another name, a metric, or a new run"
                )
            if previous is None:
                prepared[key] = text
        return prepared

    def _send_params(self, prepared: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = list(prepared.items())
        for chunk in chunks(items, MAX_PARAMS_PER_BATCH):
            self._log_batch(params=[Param(k, v) for k, v in chunk])
            self._params.update(chunk)
        self._sync_withheld_tag()

    def _filter_tags(self, tags: Mapping[str, Any]) -> dict[str, str]:
        allowed: dict[str, str] = {}
        for key, value in tags.items():
            text = truncate(to_str(value), MAX_TAG_VALUE_LEN)
            if self._redactor.withhold(key, text):
                self._withheld.add(key)
            else:
                allowed[key] = text
        return allowed

    def _send_tags(self, tags: Mapping[str, str]) -> None:
        """Send tags as they are (callers filter); dslc's own tags skip the name rule."""
        from mlflow.entities import RunTag

        items = list(tags.items())
        for chunk in chunks(items, MAX_PARAMS_PER_BATCH):
            self._log_batch(tags=[RunTag(k, v) for k, v in chunk])

    def _withheld_text(self) -> str:
        return truncate(",".join(sorted(self._withheld)), MAX_TAG_VALUE_LEN)

    def _sync_withheld_tag(self) -> None:
        text = self._withheld_text()
        if self._withheld and self._withheld_sent != text:
            self._send_tags({WITHHELD_TAG: text})
            self._withheld_sent = text

    def _log_batch(self, **entities: Any) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._mlflow_client().log_batch(self.id, synchronous=True, **entities)
        except MlflowException as exc:
            raise TrackingError(
                f"MLflow refused to log to run {self.name!r}: {_first_line(exc)}"
            ) from exc

    # -- datasets -------------------------------------------------------------------

    def _on_dataset(self, use: DatasetUse) -> None:
        """Record a dataset loaded or saved through dslc.data (innermost live run only)."""
        if self._state != "running" or self._live_children:
            return
        name = display_name(use)
        key = (name, use.fingerprint, use.role, use.location)
        with self._lock:
            if key in self._datasets:
                return
            self._datasets.add(key)
        self._mlflow_client().log_inputs(self.id, datasets=[dataset_input(use, self._redactor)])
        if use.fingerprint:
            self._send_tags({fingerprint_tag(name): use.fingerprint})

    # -- artifacts and models -------------------------------------------------------

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file or a folder's content to the run's artifacts."""
        self._require_running()
        path = Path(local_path)
        if not path.exists():
            raise TrackingError(f"cannot log artifact {path}: no such file or folder")
        if path.is_dir():
            self._mlflow_client().log_artifacts(self.id, str(path), artifact_path)
        else:
            self._mlflow_client().log_artifact(self.id, str(path), artifact_path)

    def log_figure(
        self, figure: Any, artifact_file: str, *, save_to: str | Path | bool | None = None
    ) -> Path | None:
        """Log a matplotlib (or plotly) figure as ``artifact_file``, e.g. ``"roc.png"``.

        With ``save_to=True`` also save it as ``reports/figures/<file name>``; with a path
        (a folder or a file; relative to the project root) save it there. Returns the
        saved path, or None.
        """
        self._require_running()
        self._mlflow_client().log_figure(self.id, figure, artifact_file)
        if not save_to:
            return None
        target = self._figure_target(artifact_file, save_to)
        target.parent.mkdir(parents=True, exist_ok=True)
        if hasattr(figure, "savefig"):
            figure.savefig(target)
        elif target.suffix == ".html":
            figure.write_html(str(target))
        else:
            figure.write_image(str(target))
        return target

    def _figure_target(self, artifact_file: str, save_to: str | Path | bool) -> Path:
        file_name = Path(artifact_file).name
        if save_to is True:
            return config.paths(self._root).figures / file_name
        target = Path(save_to)
        target = target if target.is_absolute() else self._root / target
        return target / file_name if target.is_dir() else target

    def log_model(
        self,
        model: Any,
        name: str = "model",
        *,
        input_example: Any = None,
        signature: Any = None,
        flavor: str = "sklearn",
        **kwargs: Any,
    ) -> ModelInfo:
        """Log a model with ``mlflow.<flavor>.log_model``; returns its ``ModelInfo``.

        Without ``signature``, one is inferred from ``input_example`` and the model's
        predictions on it. ``flavor="pyfunc"`` logs a ``PythonModel``. Extra keyword
        arguments go to the flavor's ``log_model``.
        """
        self._require_running()
        mlflow = require_mlflow()
        current = mlflow.active_run()
        if current is None or current.info.run_id != self.id:
            raise TrackingError(
                f"run {self.name!r} is not the innermost active run; log the model inside "
                "the innermost `with tracking.run()`"
            )
        if signature is None and input_example is not None:
            signature = _infer_signature(model, input_example)
        module = _flavor(flavor)
        common = {"name": name, "signature": signature, "input_example": input_example}
        if flavor == "pyfunc":
            info = module.log_model(python_model=model, **common, **kwargs)
        else:
            info = module.log_model(model, **common, **kwargs)
        self._models[name] = info
        return info

    def register_model(
        self, model: Any, name: str, *, tags: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        """Register a model of this run under ``name``; returns the new ``ModelVersion``.

        ``model`` is a ``ModelInfo`` from :meth:`log_model`, a model URI (``models:/...``,
        ``runs:/...``) or the name given to :meth:`log_model`.
        """
        self._require_running()
        mlflow = require_mlflow()
        model_uri = self._model_uri(model)
        try:
            return mlflow.register_model(model_uri, name, tags=dict(tags) if tags else None)
        except Exception as exc:
            raise TrackingError(
                f"cannot register {model_uri} as {name!r}: {_first_line(exc)}"
            ) from exc

    def _model_uri(self, model: Any) -> str:
        uri = getattr(model, "model_uri", None)
        if isinstance(uri, str):
            return uri
        text = str(model)
        if text in self._models:
            return str(self._models[text].model_uri)
        return text if ":/" in text else f"runs:/{self.id}/{text}"

    # -- helpers --------------------------------------------------------------------

    def _require_running(self) -> None:
        if self._state != "running":
            raise NoActiveRunError(
                f"run {self.name!r} is {self._state}; log inside its `with tracking.run()` block"
            )

    def _mlflow_client(self) -> MlflowClient:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self._store_uri or ensure_store())
        return self._client


def _flavor(flavor: str) -> Any:
    try:
        return importlib.import_module(f"mlflow.{flavor}")
    except ImportError as exc:
        raise TrackingError(
            f"unknown or unavailable MLflow flavor {flavor!r} ({exc}); use e.g. 'sklearn' "
            "or 'pyfunc'"
        ) from exc


def _infer_signature(model: Any, input_example: Any) -> Any:
    """Signature from the example and, when the model can predict on it, its output."""
    from mlflow.models import infer_signature

    output = None
    predict = getattr(model, "predict", None)
    if callable(predict):
        try:
            output = predict(input_example)
        except Exception as exc:  # e.g. a PythonModel's predict(context, model_input)
            _log().debug("no output signature: predict on the input example failed: %s", exc)
    return infer_signature(input_example, output)
