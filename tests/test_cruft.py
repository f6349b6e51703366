"""Projects kept current with cruft: create, check, update (also as `make update`), link.

Everything runs from a local git copy of the template: no GitHub. `make update` gets cruft
from PyPI through uv's shared cache.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.generated import bake_cli, commit_all, sh, template_git_copy

CRUFT = Path(sys.executable).with_name("cruft")
PROJECT = "{{cookiecutter.project_slug}}"
MODULE = "{{cookiecutter.module_name}}"
ANSWERS = {"project_name": "Demo Project", "project_slug": "demo-project", "ci": "none"}


def cruft(*args: str, cwd: Path, check: bool = True):
    return sh(shlex.join([str(CRUFT), *args]), cwd, check=check)


def head(repo: Path) -> str:
    return sh("git rev-parse HEAD", repo).stdout.strip()


def change_template(template: Path, edits: dict[str, str], message: str) -> str:
    """Apply {path: text appended} to the template, commit, and return the new commit."""
    for name, text in edits.items():
        path = template / name
        path.write_text(path.read_text() + text)
    sh(f"git commit --quiet -am {shlex.quote(message)}", template)
    return head(template)


def dslc_pin(project: Path) -> str:
    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    return next(dep for dep in dependencies["dependencies"] if dep.startswith("dslc"))


def create(template: Path, output_dir: Path) -> Path:
    """`cruft create` without prompts; returns the committed project."""
    cruft(
        "create",
        "--no-input",
        "--output-dir",
        str(output_dir),
        "--extra-context",
        json.dumps(ANSWERS),
        str(template),
        cwd=output_dir,
    )
    project = output_dir / "demo-project"
    commit_all(project)
    return project


def changed_paths(project: Path) -> set[str]:
    return {line[3:] for line in sh("git status --porcelain", project).stdout.splitlines()}


@pytest.mark.slow
def test_update_brings_template_changes_and_keeps_the_projects_own(tmp_path):
    template = template_git_copy(tmp_path / "ds-template")
    first = head(template)
    project = create(template, tmp_path)

    # Made as cookiecutter makes it (hooks ran: git repository, .env), plus cruft's state;
    # dslc is pinned to the template's repository and commit, not to cruft's temporary clone.
    state = json.loads((project / ".cruft.json").read_text())
    assert (state["template"], state["commit"]) == (str(template), first)
    assert (project / ".env").is_file()
    requirement = f"@ git+{template.as_uri()}@{first}#subdirectory=helpers"
    assert dslc_pin(project).endswith(requirement)
    cruft("check", cwd=project)

    # The team edits a file the template owns, and files that are its own.
    own = ["src/demo_project/train.py", "data/catalog.yml", "tests/test_features.py"]
    for name in [*own, "README.md"]:
        (project / name).write_text((project / name).read_text() + "\n# ours\n")
    commit_all(project, "Our work")
    kept = {name: (project / name).read_bytes() for name in [*own, ".env"]}

    # The template changes files it owns, files the project owns, and the dslc extras (a
    # filter in hooks/answers.py: the newer commit must render with its own filters).
    readme = f"{PROJECT}/README.md"
    text = (template / readme).read_text().replace("\n\n", "\n\nFrom the template.\n\n", 1)
    (template / readme).write_text(text)
    answers = template / "hooks" / "answers.py"
    answers.write_text(answers.read_text().replace('DSLC = "dslc[', 'DSLC = "dslc[excel,', 1))
    second = change_template(
        template,
        {
            f"{PROJECT}/.env.example": "NEW_SETTING=1\n",
            f"{PROJECT}/src/{MODULE}/train.py": "# template\n",
            f"{PROJECT}/data/catalog.classification.yml": "# template\n",
            f"{PROJECT}/tests/test_features.classification.py": "# template\n",
        },
        "Improve the template",
    )

    assert cruft("check", cwd=project, check=False).returncode != 0
    cruft("update", "--skip-apply-ask", cwd=project)

    # Only the template's own files changed: no .git of cruft's scratch renders, no .rej.
    assert changed_paths(project) == {".cruft.json", ".env.example", "README.md", "pyproject.toml"}
    readme_now = (project / "README.md").read_text()
    assert "From the template." in readme_now and readme_now.endswith("\n# ours\n")
    assert (project / ".env.example").read_text().endswith("NEW_SETTING=1\n")
    assert {name: (project / name).read_bytes() for name in kept} == kept
    assert dslc_pin(project).startswith("dslc[excel,")
    assert dslc_pin(project).endswith(f"@ git+{template.as_uri()}@{second}#subdirectory=helpers")
    assert json.loads((project / ".cruft.json").read_text())["commit"] == second
    cruft("check", cwd=project)


@pytest.mark.slow
def test_make_update_applies_changes_and_fails_on_conflicts(tmp_path):
    template = template_git_copy(tmp_path / "ds-template")
    project = create(template, tmp_path)

    change_template(template, {f"{PROJECT}/.env.example": "NEW_SETTING=1\n"}, "Setting")
    applied = sh("make update", project)
    assert "Template update applied" in applied.stdout
    assert (project / ".env.example").read_text().endswith("NEW_SETTING=1\n")
    commit_all(project, "Update from the template")
    assert "Nothing to update" in sh("make update", project).stdout

    # Both sides change the end of the README: cruft leaves conflict markers, exits 0.
    (project / "README.md").write_text((project / "README.md").read_text() + "Ours.\n")
    commit_all(project, "Our ending")
    change_template(template, {f"{PROJECT}/README.md": "Theirs.\n"}, "Template ending")
    failed = sh("make update", project, check=False)
    assert failed.returncode != 0
    assert "conflicts" in failed.stderr and "  README.md" in failed.stderr, failed.stderr
    assert "<<<<<<<" in (project / "README.md").read_text()

    # cruft's fallback when `git apply -3` fails leaves *.rej files: conflicts too. (cruft,
    # and make update's own check before it, refuse to run with them around untracked:
    # from a clean tree with a committed one, check what follows cruft alone.)
    sh("git reset -q --hard && git clean -qfd", project)
    (project / "README.md.rej").write_text("@@ -1 +1 @@\n")
    commit_all(project, "A leftover of cruft")
    failed = sh("make update CRUFT=true", project, check=False)
    assert failed.returncode != 0 and "  README.md.rej" in failed.stderr, failed.stderr


@pytest.mark.slow
def test_link_adopts_a_project_made_with_cookiecutter(tmp_path):
    """The README's recipe: link to the URL and commit named in the project's dslc pin."""
    template = template_git_copy(tmp_path / "ds-template")
    project = bake_cli(tmp_path, template=f"git+{template.as_uri()}", **ANSWERS)
    commit_all(project)
    pin = re.fullmatch(r"dslc\[[^]]*\] @ git\+(\S+)@(\w+)#subdirectory=helpers", dslc_pin(project))
    assert pin, dslc_pin(project)

    link = ["link", "--no-input", "--checkout", pin[2], "--extra-context", json.dumps(ANSWERS)]
    cruft(*link, pin[1], cwd=project)
    # The linked state renders exactly this project, so updates will diff cleanly.
    assert cruft("diff", "--exit-code", cwd=project).stdout == ""
    cruft("check", cwd=project)


@pytest.mark.parametrize(
    ("template", "origin"),
    [
        ("https://git.example.com/ds/t.git", "https://git.example.com/ds/t.git"),
        ("git@git.example.com:ds/ds-template.git", "ssh://git@git.example.com/ds/ds-template.git"),
        ("/srv/ds-template", "file:///srv/ds-template"),
    ],
)
def test_under_cruft_dslc_is_pinned_to_the_template_and_commit(template, origin):
    """cruft gives no _repo_dir (its clone is temporary): _template and _commit are used."""
    from hooks.answers import DSLC, dslc_requirement

    answers = {"dslc_source": "auto", "_template": template, "_commit": "abc123"}
    expected = f"{DSLC} @ git+{origin}@abc123#subdirectory=helpers"
    assert dslc_requirement(answers) == expected


def test_skipped_paths_exist_in_a_baked_project(bake):
    """A renamed file would silently become template-owned: every skip must match."""
    project = bake()
    skip = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["cruft"]["skip"]
    assert {".git", ".env"} <= set(skip)  # left by the hooks in cruft's scratch renders
    missing = [name for name in skip if name != "uv.lock" and not (project / name).exists()]
    assert not missing


def test_changelog_covers_the_current_version():
    version = tomllib.loads((ROOT / "helpers" / "pyproject.toml").read_text())["project"]["version"]
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"] == version
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## v{re.escape(version)}\b", changelog, re.MULTILINE)
