"""Running things inside baked projects, as a user would: make targets, uv, git."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT, run_cookiecutter

# Interpreters are the local ones (never downloaded); packages come from PyPI through uv's
# shared cache.
ENV = {
    **os.environ,
    "UV_PYTHON_DOWNLOADS": "never",
    "UV_LINK_MODE": "copy",
    "UV_COMPILE_BYTECODE": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
# The template's own test environment must not leak into the project's commands.
for name in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "MLFLOW_TRACKING_URI"):
    ENV.pop(name, None)
# Commits in baked projects need an identity, whatever the machine's git config says.
for name, value in {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@ds-template.invalid",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@ds-template.invalid",
}.items():
    ENV.setdefault(name, value)
LOCAL_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _cookiecutter_config() -> dict[str, str]:
    """The tests' cookiecutter user config (tests/conftest.py), for cookiecutter and cruft."""
    config = os.environ.get("COOKIECUTTER_CONFIG")
    return {"COOKIECUTTER_CONFIG": config} if config else {}


def sh(command: str, cwd: Path, timeout: float = 900, check: bool = True, env: dict | None = None):
    """Run a shell command; on failure show its output's tail, which says what broke."""
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**ENV, **_cookiecutter_config(), **(env or {})},
        check=False,
    )
    if check and result.returncode != 0:
        tail = (result.stdout + result.stderr)[-6000:]
        raise AssertionError(f"`{command}` failed in {cwd} (exit {result.returncode}):\n{tail}")
    return result


def bake_cli(output_dir: Path, template: str = str(ROOT), **answers: str) -> Path:
    """Generate a project with the cookiecutter command line and return its folder."""
    args = [template, *(f"{key}={value}" for key, value in answers.items())]
    result = run_cookiecutter(*args, cwd=output_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    slug = answers.get("project_slug", "my-ds-project")
    return output_dir / slug


def commit_all(project: Path, message: str = "Start from ds-template") -> None:
    sh(f"git add --all && git commit --quiet --no-verify -m '{message}'", project)


def workflow_run_steps(project: Path, workflow: str = "ci.yml") -> list[str]:
    """The workflow's `run:` steps, with the matrix Python set to the local one."""
    document = yaml.safe_load((project / ".github" / "workflows" / workflow).read_text())
    steps = [step for job in document["jobs"].values() for step in job["steps"]]
    return [
        step["run"].replace("${{ matrix.python-version }}", LOCAL_PYTHON)
        for step in steps
        if "run" in step
    ]


def template_git_copy(destination: Path) -> Path:
    """A git repository holding the template as it is in this working tree."""
    files = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode)
    sh("git init --quiet && git add --all && git commit --quiet -m template", destination)
    return destination
