"""``with tracking.run(...) as run:``: the life of one MLflow run (start, nesting,
stale runs, finish); what it records is in :mod:`._record`."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .. import _events as events
from .. import config
from .._gitinfo import changes_patch
from .._secrets import Redactor, scrub_urls, secret_values
from . import _models
from ._context import run_tags, source
from ._errors import NoActiveRunError, TrackingError, failing, require_mlflow, warn
from ._record import Recorder
from ._store import client, experiment_id

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo


ERROR_TAG = "dslc.error"
# The run's uncommitted work (helpers/README.md, dslc reproduce).
PATCH_TAG, PATCH_ARTIFACT = "dslc.git.patch", "dslc/changes.patch"
MAX_ERROR_LEN = 1000
MAX_TAG_LEN = 8000


class _Live(threading.local):
    # Runs whose `with` block is executing, innermost last, per thread (as MLflow's own).
    def __init__(self) -> None:
        self.runs: list[Run] = []


_live = _Live()


def active() -> Run | None:
    """The innermost dslc run whose ``with`` block is executing, or None."""
    return _live.runs[-1] if _live.runs else None


class Run:
    """An MLflow run opened by :func:`dslc.tracking.run`, for a ``with`` block."""

    # Set when the MLflow run starts; _started() and _running() check that it has.
    _unsubscribe: Callable[[], None]
    _stack: list[Run]  # _live.runs of the thread that started it: runs nested in it follow

    def __init__(
        self,
        name: str | None = None,
        params: Mapping[str, Any] | Any | None = None,
        tags: Mapping[str, Any] | None = None,
        experiment: str | None = None,
        nested: bool | None = None,
        parent: str | None = None,
    ) -> None:
        self._initial_params = params
        self._parent = parent
        self._initial_tags = tags
        self._experiment = experiment
        self._nested = nested
        self._state = "new"  # new -> running -> ended
        self.name = name or ""  # "" gets <script or notebook>-<YYYYmmdd-HHMMSS> at the start
        self._experiment_id: str | None = None
        self.parent_id: str | None = None  # the run this one is nested under, once started
        self._recorder: Recorder | None = None  # set once the MLflow run exists

    @property
    def id(self) -> str:
        """The MLflow run id."""
        return self._started().run_id

    @property
    def experiment_id(self) -> str:
        """Id of the experiment holding the run."""
        self._started()
        return str(self._experiment_id)

    def __enter__(self) -> Run:
        if self._state != "new":
            raise TrackingError("a tracking.run() can be entered once; call tracking.run() again")
        self._start()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            self._finish(exc)
        except Exception as close_exc:
            if exc is None:
                raise
            # Never hide the body's own exception behind a tracking hiccup.
            warn("could not close run %s cleanly: %s", self.name, close_exc)

    def _start(self) -> None:
        mlflow = require_mlflow()
        root = config.project_root()
        store = client(root)
        redactor = Redactor(secret_values(root / ".env"))
        exp_id = experiment_id(store, self._experiment, root)
        parent = self._resolve_parent(mlflow)
        src = source(root)
        self.name = redactor.scrub(self.name or f"{src.stem}-{datetime.now():%Y%m%d-%H%M%S}")
        recorder = Recorder(redactor, root, store, self.name)
        params = recorder.prepare_params(self._initial_params or {})
        # dslc's own tags skip the name rule ("mlflow.source.git.commit" is no secret) but
        # not the value check; all are cut to MLflow's limit, which start_run does not do.
        found = run_tags(root, config.project_name(root), src)
        tags = {k: scrub_urls(v) for k, v in found.items() if not redactor.leaks(v)}
        tags.update(recorder.filter_tags(self._initial_tags or {}))
        changes = changes_patch(root)  # what `dslc reproduce` applies on the run's commit
        if changes and redactor.leaks(changes.decode("utf-8", "replace")):
            warn("uncommitted changes not recorded: they hold a secret's value")
            changes = b""
        if changes:
            tags[PATCH_TAG] = PATCH_ARTIFACT
        with failing(f"cannot start a run on {store.tracking_uri}"):
            active_run = mlflow.start_run(
                experiment_id=exp_id,
                run_name=self.name,
                nested=parent is not None,
                parent_run_id=parent,
                tags={k: v[:MAX_TAG_LEN] for k, v in tags.items()},
            )
        recorder.run_id = active_run.info.run_id
        self._recorder = recorder
        self._experiment_id, self.parent_id = exp_id, parent
        self._state = "running"
        self._stack = _live.runs
        self._stack.append(self)
        self._unsubscribe = events.subscribe(self._on_dataset)
        try:
            recorder.send(params)
            if changes:
                with tempfile.TemporaryDirectory() as folder:
                    patch = Path(folder, PurePosixPath(PATCH_ARTIFACT).name)
                    patch.write_bytes(changes)
                    recorder.client.log_artifact(recorder.run_id, str(patch), "dslc")
        except BaseException as exc:  # __exit__ will not run: close the run here
            self._finish(exc)
            raise

    def _resolve_parent(self, mlflow: Any) -> str | None:
        """Decide whether the new run nests, and end a stale active run."""
        current = mlflow.active_run()
        if (enclosing := active()) is not None:
            if self._nested is False:
                raise TrackingError(
                    f"run {enclosing.name!r} is active; leave its `with` block first, or "
                    "drop nested=False to nest under it"
                )
            return str(current.info.run_id) if current is not None else enclosing.id
        if current is not None and self._nested:  # asked to nest under a run started outside dslc
            return str(current.info.run_id)
        why = "a stale run left active outside any `with tracking.run()` (a cell that raised?)"
        _kill_open_runs(mlflow, None, why)  # ends nothing when no MLflow run is active
        return self._parent

    def _finish(self, exc: BaseException | None) -> None:
        """Flush, record any error, set the final status, leave the live stack."""
        if self._state != "running":
            return
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            exc = None  # sys.exit(0) inside the block is a normal end
        flush_error: TrackingError | None = None
        try:
            self._unsubscribe()  # no dataset events while closing
            try:
                self.flush()
            except TrackingError as err:
                flush_error = err
            error = exc if exc is not None else flush_error
            status = "FINISHED"
            if error is not None:
                status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
                text = error_text(error, self._started().redactor)
                try:
                    self._started().client.set_tag(self.id, ERROR_TAG, text)
                except Exception as tag_exc:  # the status still has to be set
                    warn("could not record the error of run %s: %s", self.name, tag_exc)
            self._terminate(status)
        finally:
            self._state = "ended"
            self._stack.remove(self)
        if flush_error is not None:
            raise flush_error

    def _terminate(self, status: str) -> None:
        mlflow, client = require_mlflow(), self._started().client
        # Still RUNNING: not ended by the user, so any run above it on MLflow's stack was
        # started inside it with plain mlflow and left open.
        if client.get_run(self.id).info.status == "RUNNING":
            _kill_open_runs(mlflow, self.id, f"left open inside run {self.name}")
        if (top := mlflow.active_run()) is not None and top.info.run_id == self.id:
            mlflow.end_run(status)
        else:  # the user ended it (or it was never on MLflow's stack): still set our status
            client.set_terminated(self.id, status)

    def _started(self) -> Recorder:
        if self._recorder is None:
            raise NoActiveRunError("this run has not started; use it as `with tracking.run():`")
        return self._recorder

    def _running(self) -> Recorder:
        if self._state != "running" or self._recorder is None:
            raise NoActiveRunError(
                f"run {self.name!r} is {self._state}; log inside its `with tracking.run()` block"
            )
        return self._recorder

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Buffer one metric value; ``step`` defaults to 0 as in MLflow."""
        self.log_metrics({key: value}, step)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffer several metrics at one step (same timestamp)."""
        self._running().add_metrics(metrics, step)

    def flush(self) -> int:
        """Send buffered metrics now; return how many (on failure they stay buffered)."""
        return self._recorder.flush() if self._recorder is not None else 0

    def log_params(self, params: Mapping[str, Any] | Any) -> None:
        """Log params, flattened (``model.C``) and stringified; secrets are withheld."""
        recorder = self._running()
        recorder.send(recorder.prepare_params(params))

    def log_param(self, key: str, value: Any) -> None:
        """Log one param (see :meth:`log_params`)."""
        self.log_params({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (stringified), withholding secrets like :meth:`log_params`."""
        self._running().send({}, tags)

    def _on_dataset(self, use: events.DatasetUse) -> None:
        """Record a dataset loaded or saved through dslc.data (innermost live run only)."""
        # A slice: another thread's event may come as the stack empties.
        if self._state == "running" and self._stack[-1:] == [self]:
            self._started().record_dataset(use)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file or a folder's content to the run's artifacts."""
        recorder, path = self._running(), Path(local_path)
        if not path.exists():
            raise TrackingError(f"cannot log artifact {path}: no such file or folder")
        upload = recorder.client.log_artifacts if path.is_dir() else recorder.client.log_artifact
        upload(recorder.run_id, str(path), artifact_path)

    def log_figure(
        self, figure: Any, artifact_file: str, *, save_to: str | Path | bool | None = None
    ) -> Path | None:
        """Log a matplotlib or plotly figure; ``save_to`` also saves it (returns where)."""
        recorder = self._running()
        recorder.client.log_figure(recorder.run_id, figure, artifact_file)
        if not save_to:
            return None
        # An absolute save_to replaces the root.
        target = config.paths(recorder.root).figures if save_to is True else recorder.root / save_to
        if save_to is True or target.is_dir():
            target = target / Path(artifact_file).name
        target.parent.mkdir(parents=True, exist_ok=True)
        if hasattr(figure, "savefig"):  # matplotlib
            figure.savefig(target)
        elif target.suffix == ".html":  # plotly
            figure.write_html(str(target))
        else:
            figure.write_image(str(target))
        return target

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
        """Log a model with ``mlflow.<flavor>.log_model`` (see :mod:`._models`)."""
        recorder = self._running()
        current = require_mlflow().active_run()
        if current is None or current.info.run_id != recorder.run_id:
            raise TrackingError(
                f"run {self.name!r} is not the innermost active run; log the model inside "
                "the innermost `with tracking.run()`"
            )
        kwargs.update(input_example=input_example, signature=signature)
        return _models.log_model(model, name, flavor, **kwargs)


def error_text(error: BaseException, redactor: Redactor) -> str:
    """The ``dslc.error`` tag of a failed run: one line, no secret, MLflow-sized. Scrubbed
    before and after folding whitespace (which could join a secret's pieces), then cut."""
    text = redactor.scrub(" ".join(redactor.scrub(f"{type(error).__name__}: {error}").split()))
    return text if len(text) <= MAX_ERROR_LEN else text[: MAX_ERROR_LEN - 3] + "..."


def _kill_open_runs(mlflow: Any, until: str | None, why: str) -> None:
    """End the MLflow runs active above run ``until`` as KILLED, with a warning."""
    while (top := mlflow.active_run()) is not None and top.info.run_id != until:
        warn("ending MLflow run %s (%s), %s", top.info.run_id, top.info.run_name, why)
        mlflow.end_run("KILLED")
