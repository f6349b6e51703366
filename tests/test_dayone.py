"""A new user's first day in a generated project: no surprises from its everyday commands.

`make help` shows real addresses; `make clean` spares `.venv`; `make lab` serves JupyterLab
on loopback with the project's kernel; `make test` leaves the project as it was; `mlflow`
commands from any folder use the project's store; `make update` explains what to do
instead of failing with a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.generated import bake_cli, sh

ANSWERS = {"project_name": "Demo Project", "project_slug": "demo-project", "ci": "none"}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A project as its author has it after `make setup`, nothing run in it yet."""
    project = bake_cli(tmp_path_factory.mktemp("fresh"), ci="none")
    setup = sh("make setup", project)
    return project, setup.stdout


def test_make_help_shows_the_addresses_in_force(bake):
    project = bake()
    listing = sh("make help", project).stdout
    assert "$(" not in listing, listing
    assert re.search(r"^\s+serve\s.*127\.0\.0\.1:5001$", listing, re.MULTILINE), listing
    assert re.search(r"^\s+lab\s.*http://127\.0\.0\.1:8888$", listing, re.MULTILINE), listing
    assert re.search(r"^\s+ui\s.*http://127\.0\.0\.1:5000$", listing, re.MULTILINE), listing
    moved = sh("make help HOST=0.0.0.0 SERVE_PORT=9000 LAB_PORT=9999", project).stdout
    assert "0.0.0.0:9000" in moved and "http://0.0.0.0:9999" in moved


# -- make clean ----------------------------------------------------------------------


def _pycache_dirs(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("__pycache__") if path.is_dir()}


@pytest.mark.slow
def test_make_clean_removes_the_projects_caches_and_spares_venv(fresh):
    project, _ = fresh
    compiled = _pycache_dirs(project / ".venv")
    assert len(compiled) > 100, "make setup compiles the environment's bytecode"
    ours = [project / "src" / "my_ds_project" / "__pycache__", project / "tests" / "__pycache__"]
    for folder in ours:
        folder.mkdir(exist_ok=True)
        (folder / "x.cpython-311.pyc").write_bytes(b"")
    for cache in (".pytest_cache", ".ruff_cache", "htmlcov"):
        (project / cache).mkdir(exist_ok=True)
    (project / ".coverage").write_text("")
    kept = [project / "data" / "raw" / "kept.csv", project / "models" / "kept.pkl"]
    for path in kept:
        path.write_text("kept\n")

    sh("make clean", project)

    assert _pycache_dirs(project / ".venv") == compiled
    assert not any(folder.exists() for folder in ours)
    for cache in (".pytest_cache", ".ruff_cache", "htmlcov", ".coverage"):
        assert not (project / cache).exists(), cache
    assert all(path.read_text() == "kept\n" for path in kept)
    for path in kept:
        path.unlink()
