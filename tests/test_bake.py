"""Every option combination bakes into exactly the expected, fully rendered, valid tree."""

from __future__ import annotations

import ast
import itertools
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from hooks.answers import LICENSES, PYTHON_VERSIONS
from tests.conftest import ROOT, run_cookiecutter

PYTHONS = list(PYTHON_VERSIONS)
CIS = ["github", "none"]

COMMON_FILES = {
    ".env",
    ".env.example",
    ".gitattributes",
    ".gitignore",
    ".pre-commit-config.yaml",
    "LICENSE",
    "MLproject",
    "Makefile",
    "README.md",
    "pyproject.toml",
    "data/catalog.yml",
    "data/raw/.gitkeep",
    "data/interim/.gitkeep",
    "data/processed/.gitkeep",
    "data/external/.gitkeep",
    "models/.gitkeep",
    "notebooks/01-yn-explore-example.ipynb",
    "reports/figures/.gitkeep",
    "tests/test_evaluate.py",
    "tests/test_features.py",
    "tests/test_source_data.py",
    "tests/test_spark.py",
    "tests/test_notebooks.py",
    "docs/lifecycle.md",
    "docs/charter.md",
    ".github/ISSUE_TEMPLATE/ask.yml",
    ".github/ISSUE_TEMPLATE/data.yml",
    ".github/ISSUE_TEMPLATE/explore.yml",
    ".github/ISSUE_TEMPLATE/experiment.yml",
    ".github/ISSUE_TEMPLATE/model.yml",
    ".github/ISSUE_TEMPLATE/config.yml",
    ".github/labels.yml",
    ".github/pull_request_template.md",
}
MODULE_FILES = {
    "__init__.py",
    "dataset.py",
    "features.py",
    "evaluate.py",
    "train.py",
    "predict.py",
    "spark.py",
    "spark-log4j2.properties",
    "package.py",
}
GITHUB_CI_FILES = {".github/workflows/ci.yml", ".github/workflows/labels.yml"}
DVC_FILES = {".dvc/config", ".dvc/.gitignore", ".dvcignore", "dvc.yaml", "params.yaml"}

# Jinja left in a file means a variable or block did not render. GitHub Actions
# expressions (${{ ... }}) are the one legitimate use of braces in generated files.
UNRENDERED = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter\.")


def expected_files(module: str, ci: str, data_versioning: str = "dvc") -> set[str]:
    files = set(COMMON_FILES) | {f"src/{module}/{name}" for name in MODULE_FILES}
    if ci == "github":
        files |= GITHUB_CI_FILES
    if data_versioning == "dvc":
        files |= DVC_FILES
    return files


def project_files(project: Path) -> set[str]:
    return {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


# Every combination with DVC (the default), and each CI choice without it.
COMBINATIONS = [(*combination, "dvc") for combination in itertools.product(PYTHONS, LICENSES, CIS)]
COMBINATIONS += [(PYTHONS[0], LICENSES[0], ci, "none") for ci in CIS]


@pytest.mark.parametrize(("python_version", "license", "ci", "data_versioning"), COMBINATIONS)
def test_every_combination_bakes_clean(bake, python_version, license, ci, data_versioning):
    project = bake(
        python_version=python_version, license=license, ci=ci, data_versioning=data_versioning
    )

    assert project_files(project) == expected_files("demo_project", ci, data_versioning)
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            text = path.read_text(encoding="utf-8")
            assert not UNRENDERED.search(text), f"unrendered Jinja in {path.name}"
            _assert_parses(path, text)

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={python_version}"
    assert "dslc" in pyproject["tool"]
    assert pyproject["project"].get("license") == (None if license == "Proprietary" else license)
    classifiers = [
        c.rsplit(" :: ", 1)[1] for c in pyproject["project"]["classifiers"] if "Python ::" in c
    ]
    assert classifiers == PYTHONS[PYTHONS.index(python_version) :]
    if ci == "github":
        workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
        matrix = workflow["jobs"]["checks"]["strategy"]["matrix"]["python-version"]
        assert matrix == PYTHONS[PYTHONS.index(python_version) :]
    else:
        assert not (project / ".github" / "workflows").exists()

    _assert_ruff_clean(project)


def _assert_parses(path: Path, text: str) -> None:
    if path.suffix == ".toml":
        tomllib.loads(text)
    elif path.suffix in (".yml", ".yaml"):
        yaml.safe_load(text)
    elif path.suffix in (".json", ".ipynb"):
        json.loads(text)
    elif path.suffix == ".py":
        ast.parse(text, filename=str(path))


def _assert_ruff_clean(project: Path) -> None:
    for command in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "."],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_license_text_matches_choice(bake):
    for license, phrase in [
        ("MIT", "MIT License"),
        ("BSD-3-Clause", "BSD 3-Clause License"),
        ("Apache-2.0", "Apache License"),
        ("Proprietary", "All rights reserved"),
    ]:
        project = bake(license=license, author_name="Ada Lovelace", project_slug=license.lower())
        text = (project / "LICENSE").read_text()
        assert phrase in text and "Ada Lovelace" in text


AWKWARD_TEXT = {
    "quotes": ('The "Quoted" Project', 'Predicts "churn" \\ and more\\', 'O\'Brien, "Jr"'),
    "emoji": ("Rocket 🚀 science", "Flags 🇫🇷🇯🇵, families 👩‍👩‍👧 and 👍🏽 🧪", "Ada 👩‍🔬"),
    "astral": ("𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠀀", "Mathematical 𝒜𝓁𝓅𝒽𝒶 and CJK 𠀀𠀁𠀂 outside the BMP", "𓀀 Scribe"),
    "scripts": (
        "مشروع البيانات",
        "Ñandú, e\u0301, Ελληνικά, данные, 日本語のテキスト",
        "José Ñúñez",
    ),
    "confusables": ("Café – résumé", "It’s “smart” – ｆｕｌｌ width", "Zoë ’t Hooft"),
    "wide": ("Wide", "界 " * 120 + "🚀" * 40, "界界"),
    "braces": ("{{ x }}", '{% raw %} {{ cookiecutter.project_name }} """ \\', "{#"),
}


@pytest.mark.parametrize("kind", list(AWKWARD_TEXT))
def test_awkward_text_stays_valid_everywhere_it_lands(bake, kind):
    """TOML (no surrogate escapes), JSON, the package docstring (ruff-clean), Markdown."""
    name, description, author = AWKWARD_TEXT[kind]
    project = bake(
        project_name=name, project_slug="awkward", description=description, author_name=author
    )

    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == description
    assert pyproject["project"]["authors"][0]["name"] == author
    (notebook,) = (project / "notebooks").glob("*.ipynb")
    assert json.loads(notebook.read_text(encoding="utf-8"))["metadata"]["dslc"]["authors"] == [
        author
    ]
    docstring = _package_docstring(project).split("\n\n")[0]
    assert " ".join(docstring.split()) == " ".join(f"{name}: {description}".split())
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(f"# {name}\n\n{description}\n")
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            _assert_parses(path, path.read_text(encoding="utf-8"))
    _assert_ruff_clean(project)


def _package_docstring(project: Path) -> str:
    package = next((project / "src").iterdir()) / "__init__.py"
    return ast.get_docstring(ast.parse(package.read_text()))


def test_long_description_is_wrapped_in_the_package_docstring(bake):
    description = "A very long description of what this project predicts and why. " * 5
    project = bake(project_name="Wordy", description=description.strip(), project_slug="wordy")
    docstring = _package_docstring(project)
    summary = docstring.split("\n\n")[0]
    assert "\n" in summary, "a long summary is wrapped, not one overlong line"
    assert " ".join(summary.split()) == "Wordy: " + description.strip()
    _assert_ruff_clean(project)


def test_project_starts_as_git_repository_with_env_file(bake):
    project = bake()
    assert (project / ".git").is_dir()
    assert (project / ".env").read_text() == (project / ".env.example").read_text()


def test_relative_template_path_pins_dslc_to_its_helpers(tmp_path):
    """The README's `cookiecutter .`: a relative path must still pin the real helpers/."""
    result = run_cookiecutter(".", "--output-dir", str(tmp_path), "project_slug=rel", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    pyproject = tomllib.loads((tmp_path / "rel" / "pyproject.toml").read_text())
    (requirement,) = [dep for dep in pyproject["project"]["dependencies"] if "dslc" in dep]
    assert requirement.endswith(f"@ {(ROOT / 'helpers').as_uri()}")


# The line that names each license in its text, as the LICENSE file must start.
LICENSE_TITLES = {
    "MIT": "MIT License",
    "BSD-3-Clause": "BSD 3-Clause License",
    "Apache-2.0": "Apache License\nVersion 2.0, January 2004",
    "Proprietary": "All rights reserved.",
}


@pytest.mark.parametrize("license", LICENSES)
def test_the_license_file_is_the_license_the_metadata_declares(bake, license):
    project = bake(license=license, author_name="Ada Lovelace")
    text = " ".join((project / "LICENSE").read_text().split())
    titles = {name: " ".join(title.split()) for name, title in LICENSE_TITLES.items()}
    assert [name for name, title in titles.items() if title in text[:200]] == [license]
    assert "Ada Lovelace" in text
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    if license == "Proprietary":
        assert "license" not in metadata and "Private :: Do Not Upload" in metadata["classifiers"]
    else:
        assert metadata["license"] == license


@pytest.mark.parametrize("folder", [ROOT, ROOT / "helpers"], ids=["template", "dslc"])
def test_the_template_and_dslc_ship_the_license_their_metadata_declares(folder):
    metadata = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    assert metadata["license"] == "MIT"
    assert (folder / "LICENSE").read_text().startswith("MIT License\n")
