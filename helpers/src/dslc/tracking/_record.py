"""What a run records. Metrics are buffered: one ``log_metric`` per value costs a store
round trip (about 7 ms on SQLite), a batch of 1,000 about as much as one."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
import re
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .._events import DatasetUse
from .._secrets import Redactor, scrub_urls
from ._errors import TrackingError, failing, first_line, warn

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

WITHHELD_TAG = "dslc.withheld"


def as_mapping(obj: Any) -> Mapping[str, Any] | None:
    """Return ``obj`` as a mapping when it is one (dict, dataclass, pydantic model)."""
    if isinstance(obj, Mapping):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    dump = getattr(obj, "model_dump", None)  # pydantic v2, without importing it
    return dump() if callable(dump) and not isinstance(obj, type) else None


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"C": 1}}`` -> ``{"model.C": 1}``; lists stay one value (``"[1, 2]"``)."""
    if (mapping := as_mapping(obj)) is None:
        raise TypeError(f"expected a mapping or dataclass, got {type(obj).__name__}")
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        nested = as_mapping(value)
        flat.update({name: value} if nested is None else flatten(nested, name))
    return flat


FLUSH_INTERVAL_S = 15.0
BATCH = 1000  # MLflow's most metrics per log_batch request

# (key, value, timestamp in ms, step), as MLflow's Metric takes them.
Entry = tuple[str, float, int, int]


def refusal(key: Any, value: Any) -> str | None:
    """Why the metric ``key=value`` cannot be sent, or None. Names are the store's to judge
    (a batch it refuses is split to find them); values it would take and fail to hold."""
    if not isinstance(key, str):
        return f"a name that is a string, not {type(key).__name__}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"a real number, not {type(value).__name__}"
    try:
        float(value)
    except (OverflowError, TypeError, ValueError):
        return "a number that fits a 64-bit float"
    return None


# MLflow stores a dataset digest in a 36-character column.
MAX_DIGEST_LEN = 36
CONTEXT_TAG = "mlflow.data.context"  # the "context" MLflow's UI shows beside an input
_TAG_KEY_UNSAFE = re.compile(r"[^\w\-. /]")


def display_name(use: DatasetUse) -> str:
    if use.name:
        return use.name
    path = urlparse(use.location).path if "://" in use.location else use.location
    return PurePosixPath(path.replace("\\", "/")).name or use.location


def dataset_input(use: DatasetUse, redactor: Redactor) -> Any:
    """The ``DatasetInput`` of one use, its source shaped like MLflow's own, its digest
    dslc's fingerprint (of the query for a live SQL read, which has none)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    location = redactor.scrub(use.location)  # an URL may carry credentials
    query = redactor.scrub(use.query) if use.query is not None else None
    scheme = urlparse(location).scheme.lower()
    source: dict[str, Any] = {"uri": location}
    # A one-letter scheme is a Windows drive ("C:\\data"), not a URL.
    source_type = "local" if scheme in ("", "file") or len(scheme) == 1 else scheme
    if scheme == "sql":
        source = {"connection": location.split("://", 1)[1], "query": query}
    elif scheme in ("http", "https"):
        source_type, source = "http", {"url": location}
    digest = "unknown"
    if use.fingerprint:
        digest = use.fingerprint.rsplit(":", 1)[-1][:MAX_DIGEST_LEN] or digest
    elif query:
        digest = "query-" + hashlib.sha256(query.encode()).hexdigest()[: MAX_DIGEST_LEN - 6]
    entity = Dataset(
        name=redactor.scrub(display_name(use)),
        digest=digest,
        source_type=source_type,
        source=json.dumps(source),
        profile=json.dumps(
            {"fingerprint": use.fingerprint, "format": use.format, "role": use.role}
        ),
    )
    return DatasetInput(dataset=entity, tags=[InputTag(key=CONTEXT_TAG, value=use.role)])


class Recorder:
    """What one run sends to its store (helpers/README.md, Tracking), once ``run_id`` is set."""

    run_id = ""

    def __init__(self, redactor: Redactor, root: Path, client: MlflowClient, run_name: str) -> None:
        self.client = client
        self.redactor = redactor
        self.root = root
        self.run_name = run_name
        self.withheld: set[str] = set()
        self._params: dict[str, str] = {}
        self._withheld_sent = ""  # value of the dslc.withheld tag already on the run
        self._pending: list[Entry] = []
        self._warned: set[str] = set()
        self._refused: set[str] = set()  # metric names the store refused
        self._seen: set[DatasetUse] = set()
        self._lock = threading.Lock()  # guards _pending and _seen
        self._flush_lock = threading.Lock()  # one flush at a time keeps metric order
        self._last_flush = time.monotonic()

    def prepare_params(self, params: Mapping[str, Any] | Any) -> dict[str, str]:
        """Flatten and stringify; drop secrets and params already sent (changed: TrackingError)."""
        prepared = self.filter_tags(flatten(params))
        for key, text in prepared.items():
            if (previous := self._params.get(key, text)) != text:
                raise TrackingError(
                    f"param {key!r} is already {previous!r:.80} in run {self.run_name!r}; "
                    "MLflow params cannot change: use another name, a metric, or a new run"
                )
        return {key: text for key, text in prepared.items() if key not in self._params}

    def filter_tags(self, tags: Mapping[str, Any]) -> dict[str, str]:
        """Stringify, dropping (and noting) secret ones; URL credentials become ``***``."""
        allowed: dict[str, str] = {}
        for key, value in tags.items():
            text = value if isinstance(value, str) else str(value)
            if self.redactor.withhold(key, text):
                self.withheld.add(self.redactor.scrub(key))  # the name may hold a secret
            else:
                allowed[key] = scrub_urls(text)
        return allowed

    def send(self, params: Mapping[str, str], tags: Mapping[str, Any] | None = None) -> None:
        """Send params and ``tags`` (filtered here), and ``dslc.withheld`` if changed, at once."""
        from mlflow.entities import Param, RunTag
        from mlflow.exceptions import MlflowException

        allowed = self.filter_tags(tags or {})
        withheld = ",".join(sorted(self.withheld))
        if withheld != self._withheld_sent:
            allowed[WITHHELD_TAG] = withheld
        if params or allowed:
            with failing(f"MLflow refused to log to run {self.run_name!r}", MlflowException):
                self.client.log_batch(  # it splits batches and cuts values at MLflow's limits
                    self.run_id,
                    params=[Param(k, v) for k, v in params.items()],
                    tags=[RunTag(k, v) for k, v in allowed.items()],
                    synchronous=True,
                )
        self._params.update(params)
        self._withheld_sent = withheld

    def add_metrics(self, metrics: Mapping[str, Any], step: int | None) -> None:
        """Check and buffer values logged at one step (same timestamp); flush when due."""
        now = int(time.time() * 1000)
        try:
            at = int(step or 0)
        except (TypeError, ValueError) as exc:
            raise TrackingError(f"a metric step must be a whole number, not {step!r:.50}") from exc
        if any(self.redactor.leaks(str(key)) for key in metrics):
            raise TrackingError(
                "a metric name contains the value of a secret variable; rename the metric"
            )
        entries = []
        for key, value in metrics.items():
            if key in self._refused:
                continue  # not sent again for the store to refuse: no batch split twice
            if (reason := refusal(key, value)) is None:
                entries.append((key, float(value), now, at))
            else:
                self._drop(repr(key)[:100], f"MLflow takes {reason}")
        with self._lock:
            self._pending.extend(entries)
            due = len(self._pending) >= BATCH
        if due or time.monotonic() - self._last_flush > FLUSH_INTERVAL_S:
            self.flush()

    def _drop(self, name: str, reason: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            warn("metric %s of run %r dropped: %s", name, self.run_name, reason)

    def flush(self) -> int:
        """Send buffered metrics; return how many were stored (unreachable: they stay buffered)."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, []
            done, refused = 0, []
            try:
                for done in range(0, len(pending), BATCH):
                    refused += self._send_metrics(pending[done : done + BATCH])
            except Exception as exc:
                with self._lock:  # the failed batch is kept whole: some may be sent twice
                    self._pending[:0] = pending[done:]
                raise TrackingError(
                    f"could not send {len(pending) - done} metrics of run {self.run_name!r} "
                    f"to {self.client.tracking_uri} ({first_line(exc)}); they stay buffered"
                ) from exc
            finally:
                self._last_flush = time.monotonic()
        for entry, cause in refused:
            self._refused.add(entry[0])
            self._drop(repr(entry[0])[:100], f"the store refused it ({cause})")
        return len(pending) - len(refused)

    def _send_metrics(self, entries: Sequence[Entry]) -> list[tuple[Entry, str]]:
        """Send ``entries``; return those the store refuses, found by halving the batch."""
        from mlflow.entities import Metric
        from mlflow.exceptions import MlflowException

        try:
            metrics = [Metric(*entry) for entry in entries]
            self.client.log_batch(self.run_id, metrics=metrics, synchronous=True)
        except MlflowException as exc:  # refused content, not a transport failure: split
            if exc.error_code not in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
                raise
            if len(entries) == 1:
                return [(entries[0], first_line(exc))]
            half = len(entries) // 2
            return self._send_metrics(entries[:half]) + self._send_metrics(entries[half:])
        return []

    def record_dataset(self, use: DatasetUse) -> None:
        """Log ``use`` as a run input, with a fingerprint tag, unless it was already."""
        with self._lock:
            if use in self._seen:
                return
            self._seen.add(use)
        self.client.log_inputs(self.run_id, datasets=[dataset_input(use, self.redactor)])
        if use.fingerprint:
            name = self.redactor.scrub(display_name(use))
            key = f"dslc.data.{_TAG_KEY_UNSAFE.sub('_', name)}.fingerprint"
            self.client.set_tag(self.run_id, key, use.fingerprint)
        if use.role == "input":
            self._record_dvc_version(use)

    def _record_dvc_version(self, use: DatasetUse) -> None:
        """Tag the md5 DVC stores the file under: what ``dslc reproduce`` checks out again."""
        from .. import _dvc as dvc

        if "://" in use.location or not dvc.enabled(self.root):
            return
        path = Path(use.location)
        if not (path.is_file() and path.is_relative_to(self.root)):
            return
        key = dvc.VERSION_TAG + path.relative_to(self.root).as_posix()
        # A key MLflow refuses, or one naming a secret (a file named after a password): the
        # commit's data stands in for this input when the run is reproduced.
        if _TAG_KEY_UNSAFE.search(key) or self.redactor.leaks(key):
            return
        if (md5 := dvc.file_md5(self.root, path)) is not None:  # else DVC does not version it
            self.client.set_tag(self.run_id, key, md5)
