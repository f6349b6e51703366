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
    "tests/test_train.py",
    "tests/test_notebooks.py",
    "conf/log4j2.properties",
    "conf/spark-defaults.conf",
    "params.yaml",
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
    "estimators.py",
    "split.py",
    "train.py",
    "tune.py",
    "predict.py",
    "predict_spark.py",
}
GITHUB_CI_FILES = {".github/workflows/ci.yml", ".github/workflows/labels.yml"}
DVC_FILES = {".dvc/config", ".dvc/.gitignore", ".dvcignore", "dvc.yaml"}

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


# Every combination with DVC (the default) on the classification example, each CI choice
# without DVC, and the regression example with and without DVC.
COMBINATIONS = [
    (*combination, "dvc", "classification")
    for combination in itertools.product(PYTHONS, LICENSES, CIS)
]
COMBINATIONS += [(PYTHONS[0], LICENSES[0], ci, "none", "classification") for ci in CIS]
COMBINATIONS += [(PYTHONS[0], LICENSES[0], "github", dv, "regression") for dv in ("dvc", "none")]
# The metric that decides the champion, and its direction, per problem.
CHAMPION_METRIC = {"classification": ("test_f1_macro", True), "regression": ("test_rmse", False)}


@pytest.mark.parametrize(
    ("python_version", "license", "ci", "data_versioning", "problem"), COMBINATIONS
)
def test_every_combination_bakes_clean(bake, python_version, license, ci, data_versioning, problem):
    project = bake(
        python_version=python_version,
        license=license,
        ci=ci,
        data_versioning=data_versioning,
        problem=problem,
    )

    assert project_files(project) == expected_files("demo_project", ci, data_versioning)
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            text = path.read_text(encoding="utf-8")
            assert not UNRENDERED.search(text), f"unrendered Jinja in {path.name}"
            _assert_parses(path, text)

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={python_version}"
    settings = pyproject["tool"]["dslc"]
    assert (settings["metric"], settings["higher_is_better"]) == CHAMPION_METRIC[problem]
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


@pytest.mark.parametrize("problem", ["classification", "regression"])
def test_the_problem_selects_whole_files_and_python_holds_no_jinja_blocks(bake, problem):
    """The example's Python comes whole from the template, for either answer: no `{%` in
    the template's files that became it, and train.py short enough to read at a glance."""
    project = bake(problem=problem)
    template = ROOT / "{{cookiecutter.project_slug}}"
    sources = [path for path in template.rglob("*.py") if path.name.count(".") == 1]
    sources += template.rglob(f"*.{problem}.py")
    assert len(sources) == len(list(project.glob("src/*/*.py")) + list(project.glob("tests/*.py")))
    assert [path.name for path in sources if "{%" in path.read_text()] == []
    assert len((project / "src/demo_project/train.py").read_text().splitlines()) <= 80
    params = yaml.safe_load((project / "params.yaml").read_text())["train"]
    estimators = (project / "src/demo_project/estimators.py").read_text()
    assert len(params["estimators"]) >= 3
    assert all(f'"{name}":' in estimators for name in params["estimators"])
    figure = "confusion_matrix" if problem == "classification" else "predicted_vs_actual"
    outs = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["train"]["outs"]
    assert outs == [f"reports/figures/{figure}.png"]
    assert (
        f'FIGURE = "figures/{figure}.png"' in (project / "src/demo_project/evaluate.py").read_text()
    )


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
