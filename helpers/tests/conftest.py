"""Shared fixtures: a temporary dslc project, and isolation of env vars and logging."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgcluster import Cluster, Unavailable, throwaway_cluster

IRIS_CSV = "sepal_length,sepal_width,species\n5.1,3.5,setosa\n4.9,3.0,setosa\n6.3,3.3,virginica\n"
CATALOG = """\
# Data catalog: names datasets for data.load / data.save.
datasets:
  iris:
    location: raw/iris.csv
    description: tiny iris sample
"""
# pytester: test_checks runs an inner pytest session; tracking_support: the tracking fixtures.
pytest_plugins = ["pytester", "tracking_support"]
_VARS = ("DSLC_PROJECT_ROOT", "MLFLOW_TRACKING_URI", "DSLC_LOG_LEVEL", "DSLC_LOG_FILE")


@pytest.fixture(autouse=True)
def _isolate_env() -> Iterator[None]:
    """Restore os.environ after each test: load_env writes to it directly."""
    saved = dict(os.environ)
    for var in _VARS:
        os.environ.pop(var, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _isolate_logging() -> Iterator[None]:
    """Restore root handlers and levels that setup_logging changes."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: logging.getLogger(n).level for n in ("mlflow", "urllib3", "fsspec", "dslc")}
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)
    for n, lvl in levels.items():
        logging.getLogger(n).setLevel(lvl)


def make_project(root: Path) -> Path:
    """Write a minimal project made from ds-template at ``root``."""
    for d in ("data/raw", "data/interim", "data/processed", "data/external", "models",
              "reports/figures", "notebooks", "src/demo"):  # fmt: skip
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "demo-project"\nversion = "0.1.0"\n\n[tool.dslc]\n', encoding="utf-8"
    )
    (root / "data" / "raw" / "iris.csv").write_text(IRIS_CSV, encoding="utf-8")
    (root / "data" / "catalog.yml").write_text(CATALOG, encoding="utf-8")
    return root


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary project (pyproject with [tool.dslc], data folders, catalog); cwd is its root."""
    root = make_project(tmp_path / "proj")
    monkeypatch.chdir(root)
    return root


def age(path: Path, seconds: float = 10.0) -> None:
    """Set a file's mtime in the past, so the fingerprint cache trusts it (not 'racy')."""
    st = path.stat()
    old = st.st_mtime_ns - int(seconds * 1e9)
    os.utime(path, ns=(old, old))


@pytest.fixture(scope="session")
def pg() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster on loopback for the whole session (skips if none)."""
    try:
        with throwaway_cluster() as cluster:
            yield cluster
    except Unavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
