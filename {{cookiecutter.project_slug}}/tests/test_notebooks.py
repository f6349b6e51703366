"""Every notebook runs top to bottom, so an example or analysis that breaks is caught.

Notebooks fetch data, save datasets and log runs. Here they do it in a throwaway copy of
the project (the files git tracks or would track, plus .env) with its own MLflow store,
so `make test` leaves this project's data/, models/, catalog and MLflow store untouched.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


# Each code cell in order, in an IPython shell (magics and all), as a kernel would run
# them; the first error fails the test with IPython's traceback. In-process rather than
# through a Jupyter kernel and nbformat: the same code in a third of the time (nbformat's
# schema validation alone imports for seconds), which keeps `make test` quick.
RUN_CELLS = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

config = Config()
config.HistoryManager.enabled = False  # nothing written to ~/.ipython
shell = InteractiveShell.instance(config=config, colors="nocolor")
for cell in json.load(open(sys.argv[1], encoding="utf-8"))["cells"]:
    if cell["cell_type"] == "code":
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if not shell.run_cell(source).success:
            sys.exit(1)
"""


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs(notebook, scratch_project, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    copy = scratch_project / notebook.relative_to(ROOT)
    json.loads(copy.read_text(encoding="utf-8"))  # valid JSON, at least
    result = subprocess.run(
        [sys.executable, "-c", RUN_CELLS, copy.name],
        cwd=copy.parent,  # runs in the copy's notebooks/, as Jupyter would
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{notebook.name} failed:\n{result.stdout[-4000:]}"
