"""Metrics buffered in memory and sent with ``log_batch``.

One ``log_metric`` call per value costs a store round trip each (about 7 ms on SQLite);
a batch of 1,000 costs about as much as one. Metrics are sent when a full batch waits,
every :data:`FLUSH_INTERVAL_S` seconds (so a long training shows progress in the UI), and
when the run ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from ._errors import TrackingError, first_line
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


class MetricBuffer:
    """Metric values of one run waiting to be sent, in the order they were logged."""

    def __init__(self, writer: RunWriter) -> None:
        self._writer = writer
        self._pending: list[Entry] = []
        self._lock = threading.Lock()  # guards _pending
        self._flush_lock = threading.Lock()  # one flush at a time keeps metric order
        self._last_flush = time.monotonic()

    def add(self, metrics: Mapping[str, Any], step: int | None) -> None:
        """Buffer values logged at one step (same timestamp); flush when due."""
        now, at = int(time.time() * 1000), int(step or 0)
        entries = [(key, _number(key, value), now, at) for key, value in metrics.items()]
        with self._lock:
            self._pending.extend(entries)
            due = len(self._pending) >= MAX_METRICS_PER_BATCH
        if due or time.monotonic() - self._last_flush > FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> int:
        """Send buffered metrics now, in batches of MLflow's limit; return how many.

        On failure the unsent metrics stay buffered (a later flush retries them).
        """
        from mlflow.entities import Metric

        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, []
            sent = 0
            try:
                for chunk in chunks(pending, MAX_METRICS_PER_BATCH):
                    metrics = [Metric(k, v, ts, step) for k, v, ts, step in chunk]
                    self._writer.client.log_batch(
                        self._writer.run_id, metrics=metrics, synchronous=True
                    )
                    sent += len(chunk)
            except Exception as exc:
                with self._lock:
                    self._pending[:0] = pending[sent:]
                raise TrackingError(
                    f"could not send {len(pending) - sent} metrics of run "
                    f"{self._writer.run_name!r} to {self._writer.store_uri} "
                    f"({first_line(exc)}); they stay buffered"
                ) from exc
            finally:
                self._last_flush = time.monotonic()
        return sent
