"""Files, folders and figures attached to a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from .. import config
from ._errors import TrackingError
from ._writer import RunWriter


def log_artifact(writer: RunWriter, local_path: str | Path, artifact_path: str | None) -> None:
    """Upload a file, or a folder's content, to the run's artifacts."""
    path = Path(local_path)
    if not path.exists():
        raise TrackingError(f"cannot log artifact {path}: no such file or folder")
    if path.is_dir():
        writer.client.log_artifacts(writer.run_id, str(path), artifact_path)
    else:
        writer.client.log_artifact(writer.run_id, str(path), artifact_path)


def log_figure(
    writer: RunWriter,
    figure: Any,
    artifact_file: str,
    save_to: str | Path | bool | None,
    root: Path,
) -> Path | None:
    """Log a matplotlib or plotly figure; also save it when ``save_to`` says where."""
    writer.client.log_figure(writer.run_id, figure, artifact_file)
    if not save_to:
        return None
    target = _figure_target(artifact_file, save_to, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(figure, "savefig"):  # matplotlib
        figure.savefig(target)
    elif target.suffix == ".html":  # plotly
        figure.write_html(str(target))
    else:
        figure.write_image(str(target))
    return target


def _figure_target(artifact_file: str, save_to: str | Path | Literal[True], root: Path) -> Path:
    file_name = Path(artifact_file).name
    if save_to is True:
        return config.paths(root).figures / file_name
    target = Path(save_to)
    target = target if target.is_absolute() else root / target
    return target / file_name if target.is_dir() else target
