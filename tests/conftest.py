"""Shared helpers for the template's tests: where the template is, and how to bake it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.postgres import postgres  # noqa: F401 (a session fixture: a throwaway cluster)

ROOT = Path(__file__).resolve().parents[1]
COOKIECUTTER = Path(sys.executable).with_name("cookiecutter")

# pytest-cookies renders the answers outside cookiecutter's import patch, so the template's
# local Jinja extension (hooks/answers.py) must be importable the way cookiecutter makes it.
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


# Clones of git templates and replay files go to a scratch folder, not the user's home.
_SCRATCH = Path(tempfile.mkdtemp(prefix="ds-template-tests-"))
COOKIECUTTER_CONFIG = _SCRATCH / "cookiecutter.yaml"
COOKIECUTTER_CONFIG.write_text(
    f"cookiecutters_dir: {_SCRATCH / 'cookiecutters'}\nreplay_dir: {_SCRATCH / 'replay'}\n"
)


def run_cookiecutter(*args: str, cwd: Path, env: dict | None = None):
    """The `cookiecutter` command line, as a user runs it."""
    return subprocess.run(
        [str(COOKIECUTTER), "--no-input", "--config-file", str(COOKIECUTTER_CONFIG), *args],
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
