"""Fixtures and helpers shared by the test_tracking_* modules (a pytest plugin).

Creating and migrating a SQLite store takes seconds, so most tests start from a copy of
one migrated store made once per session (``tproj``); the tests about brand-new stores
make their own. mlflow is imported lazily, so this plugin loads without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# mlflow's own experiment and run selection live in env vars it reads itself.
_MLFLOW_VARS = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")


@pytest.fixture(autouse=True)
def _no_leftover_mlflow_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in _MLFLOW_VARS:
        monkeypatch.delenv(var, raising=False)
    yield
    mlflow = sys.modules.get("mlflow")
    while mlflow is not None and mlflow.active_run() is not None:  # never leak a run
        mlflow.end_run("KILLED")


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty mlflow.db made once, through dslc itself."""
    pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
    from dslc import tracking

    root = tmp_path_factory.mktemp("template")
    (root / "pyproject.toml").write_text('[project]\nname = "t"\n[tool.dslc]\n', encoding="utf-8")
    saved = dict(os.environ)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        tracking.ensure_store(root)
    finally:  # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI: do not leak it
        os.environ.clear()
        os.environ.update(saved)
    return root / "mlflow.db"


@pytest.fixture
def tproj(project: Path, migrated_db: Path) -> Path:
    """The shared ``project`` fixture, with a ready (migrated) store at its root."""
    shutil.copyfile(migrated_db, project / "mlflow.db")
    return project


def client() -> Any:
    """An ``MlflowClient`` on the current project's store."""
    from dslc import tracking

    return tracking.client()


def run_data(run_id: str) -> Any:
    return client().get_run(run_id)


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "T")
    git(root, "add", "-f", "pyproject.toml")
    git(root, "commit", "-qm", "init")
