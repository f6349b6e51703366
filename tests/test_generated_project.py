"""Slow: set up baked projects and run their own checks, as their users and CI would."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from tests.conftest import copy_project
from tests.generated import bake_cli, sh, template_git_copy, workflow_run_steps

pytestmark = pytest.mark.slow


def test_ci_workflow_steps_pass_in_a_fresh_project(ready_project, tmp_path):
    """Every `run:` step of the generated workflow, in order, as GitHub would run them.

    The project is `ready_project` copied: baked with the CI workflow and committed (CI
    sees a pushed repository), nothing run in it but the `make setup` that CI starts with
    too; its environment, made by that same command, spares a second install.
    """
    project = copy_project(ready_project, tmp_path, setup=False)
    steps = workflow_run_steps(project)
    assert steps[0].startswith("make setup")  # which finishes the copy
    for step in steps:
        sh(step, project)


def test_a_copy_leaves_the_ready_environment_alone(ready_project, tmp_path):
    """`copy_project` hard-links `ready_project`'s environment into the copy: `make setup`
    there must replace the files it changes, never write into the ones both share."""
    venv = ready_project / ".venv"
    before = {path: path.stat().st_mtime_ns for path in venv.rglob("*") if path.is_file()}
    project = copy_project(ready_project, tmp_path)
    for root in (ready_project, project):  # the project's code, each from its own folder
        (link,) = (root / ".venv").glob("lib/python*/site-packages/_editable_impl_*.pth")
        assert link.read_text().strip() == str(root / "src")
    changed = [p for p, mtime in before.items() if p.exists() and p.stat().st_mtime_ns != mtime]
    assert not changed, f"a copy's setup wrote into the shared environment: {changed[:5]}"


def test_project_from_git_url_pins_dslc_to_the_commit_and_passes(tmp_path):
    template = template_git_copy(tmp_path / "ds-template")
    commit = sh("git rev-parse HEAD", template).stdout.strip()
    project = bake_cli(tmp_path, template=f"git+{template.as_uri()}", ci="none")

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    requirement = (
        f"dslc[tracking,checks,report,sql] @ git+{template.as_uri()}@{commit}#subdirectory=helpers"
    )
    assert requirement in pyproject["project"]["dependencies"]

    sh("make setup && make test", project)
    installed = sh(".venv/bin/python -c 'import dslc; print(dslc.__version__)'", project)
    assert installed.stdout.strip() == _template_version()


def _template_version() -> str:
    text = (Path(__file__).parents[1] / "helpers" / "pyproject.toml").read_text()
    return tomllib.loads(text)["project"]["version"]


def test_make_help_is_the_default_and_lists_the_commands(tmp_path):
    project = bake_cli(tmp_path, ci="none")
    listing = sh("make", project).stdout
    targets = ("setup", "test", "lint", "format", "data", "train", "predict", "serve", "package")
    for target in (*targets, "ui"):
        assert re.search(rf"^\s+{target}\s+\S", listing, re.MULTILINE), target


def test_setup_says_in_one_line_when_no_python_fits(tmp_path):
    project = bake_cli(tmp_path, ci="none")
    result = sh("make setup PYTHON_VERSION=3.99", project, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "3.99" in errors[0], result.stderr
    assert not (project / ".venv").exists()


NOTEBOOK_WITH_OUTPUTS = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": 7,
            "id": "a1b2c3d4",
            "metadata": {"ExecuteTime": {"end_time": "2026-01-01"}, "scrolled": True},
            "outputs": [{"name": "stdout", "output_type": "stream", "text": ["secret-row\n"]}],
            "source": ["print('secret-row')\n"],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.11.7"},
        "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}},
        "vscode": {"interpreter": {"hash": "abc"}},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_notebook_with_outputs_is_committed_stripped(own_project):
    notebook = own_project / "notebooks" / "99-tt-leaky.ipynb"
    notebook.write_text(json.dumps(NOTEBOOK_WITH_OUTPUTS, indent=1) + "\n")
    sh("git add notebooks/99-tt-leaky.ipynb", own_project)

    first = sh("git commit -m 'Add a notebook'", own_project, check=False)
    assert first.returncode != 0, "the hook must rewrite the notebook and stop the commit"
    sh("git add notebooks/99-tt-leaky.ipynb && git commit -q -m 'Add a notebook'", own_project)

    committed = json.loads(sh("git show HEAD:notebooks/99-tt-leaky.ipynb", own_project).stdout)
    cell = committed["cells"][0]
    assert cell["outputs"] == [] and cell["execution_count"] is None
    assert "ExecuteTime" not in cell["metadata"]
    assert "widgets" not in committed["metadata"] and "vscode" not in committed["metadata"]
    assert committed["metadata"]["kernelspec"]["language"] == "python"
    assert "secret-row\n" not in json.dumps(committed["cells"][0]["outputs"])

    again = sh("make lint", own_project, check=False)
    assert again.returncode == 0, again.stdout[-3000:]


def test_git_diff_ignores_fresh_notebook_outputs(own_project):
    notebook = next((own_project / "notebooks").glob("01-*.ipynb"))
    original = notebook.read_text()
    document = json.loads(original)
    code_cell = next(cell for cell in document["cells"] if cell["cell_type"] == "code")
    code_cell["execution_count"] = 5
    code_cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": ["noise\n"]}]
    notebook.write_text(json.dumps(document, indent=1) + "\n")
    try:
        path = f"notebooks/{notebook.name}"
        raw = sh(f"git diff --no-textconv --name-only -- {path}", own_project).stdout
        assert raw.strip() == path, "the file itself did change"
        diff = f"git diff -- {path}"
        assert sh(diff, own_project).stdout == "", "outputs alone are not a change"
        code_cell["source"].append("print('a real change')\n")
        notebook.write_text(json.dumps(document, indent=1) + "\n")
        shown = sh(diff, own_project).stdout
        assert "a real change" in shown and "noise" not in shown
    finally:
        notebook.write_text(original)


def test_rerunning_a_notebook_and_saving_it_shows_no_git_diff(own_project):
    """Run, commit (the hook strips it), run again: what Jupyter rewrites is not a change."""
    path = "notebooks/98-tt-rerun.ipynb"
    cell = {"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {},
            "outputs": [], "source": ["print(6 * 7)"]}  # fmt: skip
    kernel = {"display_name": "Python 3", "language": "python", "name": "python3"}
    document = {"cells": [cell], "metadata": {"kernelspec": kernel}, "nbformat": 4,
                "nbformat_minor": 5}  # fmt: skip
    (own_project / path).write_text(json.dumps(document, indent=1) + "\n")
    run = f"uv run jupyter nbconvert --to notebook --execute --inplace {path}"
    sh(run, own_project)
    # The first commit stops: the hook strips the notebook, which is then added again.
    commit = f"git add {path} && git commit -q -m 'A notebook'"
    sh(f"{commit} || {commit}", own_project)
    assert sh(f"git status --porcelain -- {path}", own_project).stdout == "", "committed"
    sh(run, own_project)
    raw = sh(f"git diff --no-textconv --name-only -- {path}", own_project).stdout
    assert raw.strip() == path, "the run rewrote the file (outputs, language_info)"
    assert sh(f"git diff -- {path}", own_project).stdout == ""


def test_lint_fails_on_a_committed_env_file(own_project):
    (own_project / "config").mkdir(exist_ok=True)
    (own_project / "config" / ".env").write_text("API_TOKEN=abc\n")
    sh("git add --force config/.env", own_project)
    try:
        result = sh("make lint", own_project, check=False)
        assert result.returncode != 0
        assert ".env files hold secrets" in result.stdout
    finally:
        sh("git rm -q --cached config/.env && rm -r config", own_project)
