"""Every notebook runs top to bottom, so an example or analysis that breaks is caught.

Notebooks fetch data, save datasets and log runs. Here they do it in a throwaway copy of
the project (the files git tracks or would track, plus .env) with its own MLflow store,
so `make test` leaves this project's data/, models/, catalog and MLflow store untouched.
"""

import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted(ROOT.glob("notebooks/*.ipynb"))


def project_files() -> list[str]:
    """The project's files as a fresh clone has them (git-ignored data and stores aside)."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listing.returncode != 0:
        pytest.fail(f"cannot list the project's files with git: {listing.stderr.decode()}")
    return [name for name in listing.stdout.decode().split("\0") if (ROOT / name).is_file()]


@pytest.fixture
def scratch_project(tmp_path, monkeypatch):
    """A copy of the project that dslc (and so the notebooks) treat as the project."""
    copy = tmp_path / ROOT.name
    for name in [*project_files(), ".env"]:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    monkeypatch.setenv("DSLC_PROJECT_ROOT", str(copy))
    # Set here, it wins over .env, which may name the team's tracking server.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{copy / 'mlflow.db'}")
    return copy


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs(notebook, scratch_project, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    copy = scratch_project / notebook.relative_to(ROOT)
    document = nbformat.read(copy, as_version=4)
    client = NotebookClient(
        document,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(copy.parent)}},  # runs in the copy's notebooks/
    )
    client.execute()
