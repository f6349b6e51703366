"""Metrics buffered in memory and sent with ``log_batch``.

One ``log_metric`` call per value costs a store round trip each (about 7 ms on SQLite);
a batch of 1,000 costs about as much as one. Metrics are sent when a full batch waits,
every :data:`FLUSH_INTERVAL_S` seconds (so a long training shows progress in the UI), and
when the run ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..secrets import Redactor
from ._errors import TrackingError, first_line, warn
from ._writer import MAX_METRICS_PER_BATCH, RunWriter, chunks

FLUSH_INTERVAL_S = 15.0

# (key, value, timestamp in ms, step), as MLflow's Metric takes them.
Entry = tuple[str, float, int, int]


def _number(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise TrackingError(
            f"metric {key!r} must be a number, got {type(value).__name__} {value!r:.50}"
        ) from exc


def _step(step: Any) -> int:
    try:
        return int(step or 0)
    except (TypeError, ValueError) as exc:
        raise TrackingError(f"a metric step must be a whole number, not {step!r:.50}") from exc


def _validate(key: str, value: float, timestamp: int, step: int) -> None:
    """MLflow's own check of one metric, so a bad name fails where it is logged."""
    try:
        from mlflow.utils.validation import _validate_metric
    except ImportError:  # moved in some MLflow: the store refuses it, flush() isolates it
        return
    from mlflow.exceptions import MlflowException

    try:
        _validate_metric(key, value, timestamp, step)
    except MlflowException as exc:
        raise TrackingError(f"MLflow refuses metric {key!r:.100}: {first_line(exc)}") from exc


def _refused(exc: Exception) -> bool:
    """True when the store refused the content of a batch (not a transport failure)."""
    return str(getattr(exc, "error_code", "")) in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST")


class MetricBuffer:
    """Metric values of one run waiting to be sent, in the order they were logged.

    Each value is checked when it is logged (a name MLflow refuses raises there, and
    nothing is buffered). Should the store still refuse a batch, the batch is split until
    the refused values are isolated: the others are sent, the refused ones are dropped
    with one warning line naming them.
    """

    def __init__(self, writer: RunWriter, redactor: Redactor) -> None:
        self._writer = writer
        self._redactor = redactor
        self._pending: list[Entry] = []
        self._lock = threading.Lock()  # guards _pending
        self._flush_lock = threading.Lock()  # one flush at a time keeps metric order
        self._last_flush = time.monotonic()

    def add(self, metrics: Mapping[str, Any], step: int | None) -> None:
        """Check and buffer values logged at one step (same timestamp); flush when due."""
        now, at = int(time.time() * 1000), _step(step)
        entries = [self._entry(key, value, now, at) for key, value in metrics.items()]
        with self._lock:
            self._pending.extend(entries)
            due = len(self._pending) >= MAX_METRICS_PER_BATCH
        if due or time.monotonic() - self._last_flush > FLUSH_INTERVAL_S:
            self.flush()

    def _entry(self, key: str, value: Any, timestamp: int, step: int) -> Entry:
        if self._redactor.leaks(str(key)):
            raise TrackingError(
                "a metric name contains the value of a secret variable; rename the metric"
            )
        number = _number(key, value)
        _validate(key, number, timestamp, step)
        return key, number, timestamp, step

    def flush(self) -> int:
        """Send buffered metrics now, in batches of MLflow's limit; return how many.

        If the store cannot be reached, the unsent metrics stay buffered (a later flush
        retries them) and TrackingError is raised.
        """
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, []
            done, refused = 0, []
            try:
                for chunk in chunks(pending, MAX_METRICS_PER_BATCH):
                    refused += self._send(chunk)
                    done += len(chunk)
            except Exception as exc:
                # The chunk being sent is kept whole: some of it may be sent twice.
                with self._lock:
                    self._pending[:0] = pending[done:]
                raise TrackingError(
                    f"could not send {len(pending) - done} metrics of run "
                    f"{self._writer.run_name!r} to {self._writer.store_uri} "
                    f"({first_line(exc)}); they stay buffered"
                ) from exc
            finally:
                self._last_flush = time.monotonic()
        if refused:
            names = ", ".join(sorted({repr(entry[0]) for entry, _ in refused})[:3])
            warn(
                "MLflow refused %d metric value(s) of run %r, dropped: %s (%s); the other %d "
                "were sent",
                len(refused), self._writer.run_name, names, refused[0][1], done - len(refused),
            )  # fmt: skip
        return done - len(refused)

    def _send(self, entries: Sequence[Entry]) -> list[tuple[Entry, str]]:
        """Send ``entries``; return those the store refuses, found by halving the batch."""
        from mlflow.entities import Metric
        from mlflow.exceptions import MlflowException

        try:
            self._writer.client.log_batch(
                self._writer.run_id,
                metrics=[Metric(k, v, ts, step) for k, v, ts, step in entries],
                synchronous=True,
            )
        except MlflowException as exc:
            if not _refused(exc):
                raise
            if len(entries) == 1:
                return [(entries[0], first_line(exc))]
            half = len(entries) // 2
            return self._send(entries[:half]) + self._send(entries[half:])
        return []
