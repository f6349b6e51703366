"""Metrics buffered in memory and sent with ``log_batch``.

One ``log_metric`` call per value costs a store round trip each (about 7 ms on SQLite);
a batch of 1,000 costs about as much as one. Metrics are sent when a full batch waits,
every :data:`FLUSH_INTERVAL_S` seconds (so a long training shows progress in the UI), and
when the run ends.
"""

from __future__ import annotations

import numbers
import os
import posixpath
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .._secrets import Redactor
from ._errors import TrackingError, first_line, warn
from ._writer import RunWriter

FLUSH_INTERVAL_S = 15.0
BATCH = 1000  # MLflow's most metrics per log_batch request
# MLflow's metric name rule (mlflow.utils.validation, as its docs state it): slashes,
# alphanumerics, underscores, periods, dashes and spaces, colons too except on Windows;
# at most 250 characters; no name that a path normalisation would change.
NAME = re.compile(r"[/\w.\- ]*" if os.name == "nt" else r"[/\w.\- :]*")
MAX_NAME_LEN = 250

# (key, value, timestamp in ms, step), as MLflow's Metric takes them.
Entry = tuple[str, float, int, int]


def refusal(key: Any, value: Any) -> str | None:
    """Why MLflow would refuse the metric ``key=value``, or None when it takes it."""
    if not isinstance(key, str) or not NAME.fullmatch(key) or len(key) > MAX_NAME_LEN:
        return "a name of letters, digits, '_', '-', '.', ' ', '/' (at most 250)"
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith(("..", "/")):
        return "a name that stays the same as a path (no '..', './', leading or double '/')"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"a real number, not {type(value).__name__}"
    try:
        float(value)
    except (OverflowError, TypeError, ValueError):
        return "a number that fits a 64-bit float"
    return None


def _step(step: Any) -> int:
    try:
        return int(step or 0)
    except (TypeError, ValueError) as exc:
        raise TrackingError(f"a metric step must be a whole number, not {step!r:.50}") from exc


def _refused(exc: Exception) -> bool:
    """True when the store refused the content of a batch (not a transport failure)."""
    return str(getattr(exc, "error_code", "")) in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST")


class MetricBuffer:
    """Metric values of one run waiting to be sent, in the order they were logged.

    A value MLflow would refuse is dropped where it is logged, with one warning per name;
    the others are kept. Should the store still refuse a batch (another server's rules),
    the batch is split until the refused values are isolated and dropped likewise.
    """

    def __init__(self, writer: RunWriter, redactor: Redactor) -> None:
        self._writer = writer
        self._redactor = redactor
        self._pending: list[Entry] = []
        self._warned: set[str] = set()
        self._lock = threading.Lock()  # guards _pending
        self._flush_lock = threading.Lock()  # one flush at a time keeps metric order
        self._last_flush = time.monotonic()

    def add(self, metrics: Mapping[str, Any], step: int | None) -> None:
        """Check and buffer values logged at one step (same timestamp); flush when due."""
        now, at = int(time.time() * 1000), _step(step)
        if any(self._redactor.leaks(str(key)) for key in metrics):
            raise TrackingError(
                "a metric name contains the value of a secret variable; rename the metric"
            )
        entries = []
        for key, value in metrics.items():
            reason = refusal(key, value)
            if reason is None:
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
            warn("metric %s of run %r dropped: %s", name, self._writer.run_name, reason)

    def flush(self) -> int:
        """Send buffered metrics now, in batches of :data:`BATCH`; return how many were
        stored. If the store cannot be reached, the unsent metrics stay buffered (a later
        flush retries them) and TrackingError is raised."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, []
            done, refused = 0, []
            try:
                for done in range(0, len(pending), BATCH):
                    refused += self._send(pending[done : done + BATCH])
            except Exception as exc:
                with self._lock:  # the failed batch is kept whole: some may be sent twice
                    self._pending[:0] = pending[done:]
                raise TrackingError(
                    f"could not send {len(pending) - done} metrics of run "
                    f"{self._writer.run_name!r} to {self._writer.store_uri} "
                    f"({first_line(exc)}); they stay buffered"
                ) from exc
            finally:
                self._last_flush = time.monotonic()
        for entry, cause in refused:
            self._drop(repr(entry[0])[:100], f"the store refused it ({cause})")
        return len(pending) - len(refused)

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
