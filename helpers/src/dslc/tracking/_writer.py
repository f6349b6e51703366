"""Write to one MLflow run in batches that respect MLflow's limits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import TrackingError, first_line

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# MLflow's limits (mlflow.utils.validation), repeated here so importing this module does
# not import mlflow. They have been stable across MLflow 2.x and 3.x.
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_PARAM_VALUE_LEN = 6000
MAX_TAG_VALUE_LEN = 8000

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Yield consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class RunWriter:
    """An MLflow client bound to one run: what the parts of a :class:`Run` write through."""

    client: MlflowClient
    run_id: str
    run_name: str
    store_uri: str

    def log_batch(self, **entities: Any) -> None:
        """``MlflowClient.log_batch`` for this run, refusals as one-line TrackingErrors."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.log_batch(self.run_id, synchronous=True, **entities)
        except MlflowException as exc:
            raise TrackingError(
                f"MLflow refused to log to run {self.run_name!r}: {first_line(exc)}"
            ) from exc

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Send tags as they are (callers filter secrets), in batches."""
        from mlflow.entities import RunTag

        for chunk in chunks(list(tags.items()), MAX_PARAMS_PER_BATCH):
            self.log_batch(tags=[RunTag(k, v) for k, v in chunk])
