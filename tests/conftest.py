"""Shared helpers for the template's tests: where the template is, and how to bake it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COOKIECUTTER = Path(sys.executable).with_name("cookiecutter")

# pytest-cookies renders the answers outside cookiecutter's import patch, so the template's
# local Jinja extension (hooks/extension.py) must be importable the way cookiecutter makes it.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

# Answers that avoid slow or networked work in tests that only inspect files.
FAST_ANSWERS = {"project_name": "Demo Project"}


@pytest.fixture
def bake(cookies):
    """Bake the template with some answers; fail with cookiecutter's error if it breaks."""

    def _bake(**answers: str) -> Path:
        result = cookies.bake(extra_context={**FAST_ANSWERS, **answers}, template=str(ROOT))
        assert result.exception is None, f"bake failed: {result.exception!r}"
        assert result.exit_code == 0
        return Path(result.project_path)

    return _bake


@pytest.fixture(scope="session", autouse=True)
def cookiecutter_config(tmp_path_factory) -> Iterator[Path]:
    """cookiecutter's user config for the whole run: clones of git templates and replay
    files go to pytest's temporary folder, not to the user's home. cookiecutter and cruft
    read it from COOKIECUTTER_CONFIG."""
    folder = tmp_path_factory.mktemp("cookiecutter-user")
    config = folder / "cookiecutter.yaml"
    config.write_text(
        f"cookiecutters_dir: {folder / 'cookiecutters'}\nreplay_dir: {folder / 'replay'}\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COOKIECUTTER_CONFIG", str(config))
        yield config


def run_cookiecutter(*args: str, cwd: Path, env: dict | None = None):
    """The `cookiecutter` command line, as a user runs it (with the tests' user config)."""
    return subprocess.run(
        [str(COOKIECUTTER), "--no-input", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


@pytest.fixture(scope="session")
def ready_project(tmp_path_factory):
    """One baked, committed and set-up project shared by the slow tests that only use it."""
    from tests.generated import bake_cli, commit_all, sh

    project = bake_cli(tmp_path_factory.mktemp("ready"), ci="github")
    commit_all(project)
    sh("make setup", project)
    return project
