"""Tests of artifacts and figures: they land under the project root, never the cwd."""

from __future__ import annotations

from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
pytest.importorskip("filelock", reason="filelock not installed (dslc[tracking] extra)")

from tracking_support import client  # noqa: E402

from dslc import tracking  # noqa: E402


def test_everything_lands_under_the_root_not_the_cwd(
    tproj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    notebooks = tproj / "notebooks"
    monkeypatch.chdir(notebooks)
    note = notebooks / "note.txt"
    note.write_text("hello", encoding="utf-8")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    with tracking.run() as run:
        run.log_artifact(note)
        saved = run.log_figure(fig, "plots/line.png", save_to=True)
    plt.close(fig)
    assert sorted(p.name for p in notebooks.iterdir()) == ["note.txt"]
    assert saved == tproj / "reports" / "figures" / "line.png" and saved.is_file()
    exp = client().get_experiment(run.experiment_id)
    assert exp.name == "demo-project"
    assert exp.artifact_location == (tproj / "mlartifacts").as_uri()
    artifacts = {a.path for a in client().list_artifacts(run.id)}
    assert artifacts == {"note.txt", "plots"}
    assert list((tproj / "mlartifacts").rglob("line.png"))
