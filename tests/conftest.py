"""Shared helpers for the template's tests: where the template is, and how to bake it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from tests.postgres import postgres  # noqa: F401 (a session fixture: a throwaway cluster)

ROOT = Path(__file__).resolve().parents[1]
COOKIECUTTER = Path(sys.executable).with_name("cookiecutter")

# pytest-cookies renders the answers outside cookiecutter's import patch, so the template's
# local Jinja extension (hooks/extension.py) must be importable the way cookiecutter makes it.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

# The longest modules first: pytest-xdist hands out whole modules in collection order
# (with --no-loadscope-reorder in pyproject.toml; by default it hands out the modules with
# the most tests first), and the workers end together when the last ones handed out are
# short. Ordered by seconds per module on 2 cores (--durations=0, 2026-12-05). Speed only:
# each module passes on its own and in any order.
LONGEST_FIRST = (
    "test_pipeline.py",  # 298 s
    "test_dvc.py",  # 195 s
    "test_tune.py",  # 190 s
    "test_generated_project.py",  # 161 s
    "test_team.py",  # 148 s
    "test_deploy.py",  # 144 s
    "test_dayone.py",  # 136 s
    "test_answer_properties.py",  # 117 s
    "test_regression.py",  # 111 s
    "test_postgres.py",  # 78 s
    "test_sql_sources.py",  # 57 s
    "test_answers.py",  # 48 s
    "test_report.py",  # 43 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


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


def run_folder(tmp_path_factory) -> Path:
    """The run's temporary folder, shared by every pytest-xdist worker of the run."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def ready_project(tmp_path_factory) -> Path:
    """One baked, committed and set-up project for the run; no test changes it.

    Tests that only read a set-up project use it; a module that runs anything in one takes
    a copy (`own_project`). Made once even with several pytest-xdist workers (a file lock
    in the run's shared folder). Its `.venv` is relocatable (made by `uv venv --relocatable`
    before `make setup`, which keeps it), so a copy works with the copied environment.
    """
    from tests.generated import bake_cli, commit_all, sh

    folder = run_folder(tmp_path_factory) / "ready"
    with FileLock(f"{folder}.lock"):
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            project = bake_cli(folder, ci="github")
            commit_all(project)
            sh("uv venv --quiet --relocatable .venv && make setup", project)
            assert "relocatable = true" in (project / ".venv" / "pyvenv.cfg").read_text(), (
                "make setup replaced the relocatable environment: copies would run this one"
            )
            (folder / "done").write_text(project.name)
    return folder / (folder / "done").read_text()


def copy_project(source: Path, folder: Path, setup: bool = True) -> Path:
    """A set-up project of its own: `source` copied, then `make setup` in the copy, which
    finds its (relocatable) environment ready and reinstalls only the project itself (its
    folder moved) and the git hooks (they name the environment's Python).

    The environment (1.2 GB) is hard-linked, as uv links packages from its cache: a copy
    took 10 s, a link 1 s. uv replaces a file by unlinking it, never by writing into it,
    and the tests write no bytecode (PYTHONDONTWRITEBYTECODE), so no copy changes
    `source`'s environment; `test_a_copy_leaves_the_ready_environment_alone` checks it.
    Everything else is copied: tests write into their project's files.

    `setup=False` leaves that `make setup` to the caller, who must run it first.
    """
    from tests.generated import sh

    target = folder / source.name
    target.mkdir()
    for entry in source.iterdir():
        if entry.name != ".venv":
            subprocess.run(["cp", "-a", str(entry), str(target)], check=True)
    seed_environment(target, source)
    if setup:
        sh("make setup", target)
    return target


def seed_environment(project: Path, source: Path) -> None:
    """Give `project` the environment of the set-up project `source` (relocatable),
    hard-linked (see `copy_project`), before its `make setup`, which syncs it to the
    project's own lock: the environment a setup from nothing makes, in seconds instead of
    half a minute (every package reinstalled and compiled again)."""
    subprocess.run(["cp", "-al", str(source / ".venv"), str(project / ".venv")], check=True)


@pytest.fixture(scope="module")
def own_project(ready_project, tmp_path_factory) -> Iterator[Path]:
    """A copy of `ready_project` for one test module, which may change anything in it.

    Its environment (over 1 GB) is removed afterwards; the rest stays for a look.
    """
    project = copy_project(ready_project, tmp_path_factory.mktemp("own"))
    yield project
    shutil.rmtree(project / ".venv", ignore_errors=True)
