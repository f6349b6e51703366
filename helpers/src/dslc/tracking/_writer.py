"""One MLflow run as the parts of a :class:`~dslc.tracking.Run` write to it: batches,
tags, files and figures. ``MlflowClient.log_batch`` splits batches at MLflow's limits and
the store truncates long values (with a warning), so dslc does neither."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config
from ._errors import TrackingError, first_line

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class RunWriter:
    """An MLflow client bound to one run."""

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
        """Send tags as they are (callers filter secrets)."""
        from mlflow.entities import RunTag

        if tags:
            self.log_batch(tags=[RunTag(k, v) for k, v in tags.items()])

    def log_artifact(self, local_path: str | Path, artifact_path: str | None) -> None:
        """Upload a file, or a folder's content, to the run's artifacts."""
        path = Path(local_path)
        if not path.exists():
            raise TrackingError(f"cannot log artifact {path}: no such file or folder")
        upload = self.client.log_artifacts if path.is_dir() else self.client.log_artifact
        upload(self.run_id, str(path), artifact_path)

    def log_figure(
        self, figure: Any, artifact_file: str, save_to: str | Path | bool | None, root: Path
    ) -> Path | None:
        """Log a matplotlib or plotly figure; also save it when ``save_to`` says where."""
        self.client.log_figure(self.run_id, figure, artifact_file)
        if not save_to:
            return None
        name = Path(artifact_file).name
        if save_to is True:
            target = config.paths(root).figures / name
        else:
            target = Path(save_to) if Path(save_to).is_absolute() else root / save_to
            target = target / name if target.is_dir() else target
        target.parent.mkdir(parents=True, exist_ok=True)
        if hasattr(figure, "savefig"):  # matplotlib
            figure.savefig(target)
        elif target.suffix == ".html":  # plotly
            figure.write_html(str(target))
        else:
            figure.write_image(str(target))
        return target
