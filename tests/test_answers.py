"""Answers are checked before anything is written and kept as data.

A bad answer, or a bad place for the project, is refused with one line that names what is
wrong, exit status 1 and nothing on disk, whichever way cookiecutter is run. An accepted
answer is written as typed: never run as a template.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from cookiecutter.cli import main as cookiecutter_cli

from hooks.answers import CLAIM, PYTHON_VERSIONS, project_imports, validate
from tests.conftest import COOKIECUTTER, ROOT, run_cookiecutter

NEWER_PYTHON = f"3.{int(PYTHON_VERSIONS[-1].split('.')[1]) + 1}"

BAD_ANSWERS = [
    # Free text: present, on one line, printable, trimmed, of a sane length.
    ("project_name", ""),
    ("author_name", ""),
    ("project_name", "two\nlines"),
    ("description", "first\r\nsecond"),
    ("project_name", "nul\x00byte"),
    ("author_name", "escape \x1b[31mred"),
    ("description", "a\ttab"),
    ("description", "delete\x7f"),
    ("author_name", "next line\x85"),
    ("project_name", "line\u2028separator"),
    ("description", "paragraph\u2029separator"),
    ("description", "bidi \u202eoverride\u202c"),
    ("author_name", "isolate \u2066x\u2069"),
    ("project_name", "\udcff"),  # how Python reads a byte that is not UTF-8
    ("author_name", "Ada \udc80 Lovelace"),
    ("project_name", " padded"),
    ("author_name", "Ada "),
    ("project_name", "n" * 201),
    ("description", "d" * 501),
    # The project folder and distribution name.
    ("project_slug", "my project"),
    ("project_slug", "a/b"),
    ("project_slug", "../escape"),
    ("project_slug", ".."),
    ("project_slug", "a..b"),
    ("project_slug", "/absolute"),
    ("project_slug", "-leading-dash"),
    ("project_slug", "trailing."),
    ("project_slug", "s" * 65),
    ("project_slug", "s" * 300),  # longer than a file name may be
    # The module: an identifier that shadows nothing the project imports.
    ("module_name", "1st_model"),
    ("module_name", "my-model"),
    ("module_name", "MyModel"),
    ("module_name", "m" * 65),
    ("module_name", "class"),
    ("module_name", "match"),
    ("module_name", "json"),
    ("module_name", "os"),
    ("module_name", "dslc"),
    ("module_name", "mlflow"),
    ("module_name", "pandas"),
    ("module_name", "sklearn"),
    ("module_name", "click"),  # a dependency of a dependency (mlflow, flask)
    ("module_name", "requests"),
    ("module_name", "jinja2"),
    ("module_name", "yaml"),
    ("module_name", "pil"),  # PIL on a case-insensitive file system
    ("module_name", "pytest"),  # a dev tool
    ("module_name", "__init__"),
    ("module_name", "__main__"),
    ("module_name", "conftest"),
    ("module_name", "setup"),
    ("module_name", "sitecustomize"),
    ("module_name", "tests"),
    # Addresses the packaging tools refuse, or that are not addresses at all.
    ("author_email", "not-an-email"),
    ("author_email", "a@b"),
    ("author_email", "a@localhost"),
    ("author_email", "a b@example.com"),
    ("author_email", 'a"b@example.com'),
    ("author_email", "a,b@example.com"),
    ("author_email", "a..b@example.com"),
    ("author_email", ".a@example.com"),
    ("author_email", "[a]@example.com"),
    ("author_email", "a@[192.0.2.1]"),
    ("author_email", "(comment)a@example.com"),
    ("author_email", "Ada <a@example.com>"),
    ("author_email", "a@example.com."),
    ("author_email", "a@-example.com"),
    ("author_email", "ü@example.com"),
    # Choices.
    ("python_version", "3.9"),
    ("python_version", "3.10"),  # out of support; the dev tools need 3.11
    ("python_version", NEWER_PYTHON),
    ("python_version", "3"),
    ("python_version", "3.11.4"),
    ("python_version", "three"),
    ("license", "GPL-3.0"),
    ("license", "mit"),
    ("ci", "gitlab"),
    ("problem", "clustering"),
    ("problem", "Regression"),
    ("dslc_source", "whatever"),
    ("dslc_source", "pip install dslc"),
    ("dslc_source", "https://host/with space"),
    ("dslc_source", 'https://host/"quoted"'),
]
IDS = [f"{field}={value!r}"[:60] for field, value in BAD_ANSWERS]


def _nothing_in(folder: Path) -> bool:
    return not any(path.is_file() or path.is_symlink() for path in folder.rglob("*"))


@pytest.mark.parametrize(("field", "value"), BAD_ANSWERS, ids=IDS)
def test_bad_answer_is_refused_before_anything_is_written(cookies, tmp_path, field, value):
    """Through cookiecutter's API (pytest-cookies), as tools and tests call it."""
    result = cookies.bake(extra_context={field: value}, template=str(ROOT))

    assert result.exit_code == -1  # pytest-cookies' code for an exception
    assert type(result.exception).__name__ == "Refused", repr(result.exception)
    message = str(result.exception)
    assert message.startswith(f"Invalid {field} ") and "\n" not in message
    assert repr(value)[:40] in message
    # pytest-cookies made an empty output folder for this bake: it must still be empty.
    (output,) = (tmp_path / "cookies").iterdir()
    assert list(output.iterdir()) == []


def cli(*args: str):
    """cookiecutter's command line (its click command) run in this process, which is faster
    than a process of its own; an exception it does not handle shows as result.exception."""
    return CliRunner().invoke(cookiecutter_cli, list(args))


@pytest.mark.parametrize(("field", "value"), BAD_ANSWERS, ids=IDS)
def test_bad_answer_on_the_command_line_gets_one_line(tmp_path, field, value):
    result = cli("--no-input", "-o", str(tmp_path), str(ROOT), f"{field}={value}")

    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Invalid {field} "), result.output
    assert list(tmp_path.iterdir()) == [], "nothing may be left on disk"


@pytest.mark.parametrize(
    "argument",
    [b"module_name=click", b"project_name=\xff", b"project_slug=" + b"s" * 300, b"ci=gitlab"],
    ids=["shadowing-module", "invalid-utf8-byte", "overlong-slug", "choice"],
)
def test_refusal_in_a_real_process_is_one_line(tmp_path, argument):
    """The same, in a process of its own: no traceback on stderr either."""
    result = subprocess.run(
        [str(COOKIECUTTER), "--no-input", str(ROOT).encode(), argument],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    output = (result.stdout + result.stderr).decode(errors="replace").strip()
    assert result.returncode == 1
    assert len(output.splitlines()) == 1 and output.startswith("Invalid "), output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("inside", ["", "sub"], ids=["file", "below-a-file"])
def test_output_dir_naming_a_file_is_refused_in_one_line(tmp_path, inside):
    (tmp_path / "notes.txt").write_text("mine\n")
    output_dir = tmp_path / "notes.txt" / inside

    result = run_cookiecutter("-o", str(output_dir), str(ROOT), cwd=tmp_path)

    text = (result.stdout + result.stderr).strip()
    assert result.returncode == 1
    assert len(text.splitlines()) == 1 and "is a file, not a folder" in text, text
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


@pytest.mark.parametrize("name", ["a{{ 7*7 }}b", "{% raw %}", "{#"])
def test_output_dir_with_template_syntax_is_refused_in_one_line(tmp_path, name):
    """cookiecutter renders the folders' paths, --output-dir included, through Jinja."""
    result = run_cookiecutter("-o", str(tmp_path / name), str(ROOT), cwd=tmp_path)

    text = (result.stdout + result.stderr).strip()
    assert result.returncode == 1
    assert len(text.splitlines()) == 1 and "Jinja syntax" in text, text
    assert list(tmp_path.iterdir()) == []


def _replay_file(folder: Path, **answers) -> Path:
    """A replay file, as cookiecutter writes one, with some answers replaced."""
    context = json.loads((ROOT / "cookiecutter.json").read_text())
    context = {key: value for key, value in context.items() if not key.startswith("_")}
    context.update({"project_slug": "replayed", "module_name": "replayed", **answers})
    path = folder / "replay.json"
    path.write_text(json.dumps({"cookiecutter": context}))
    return path


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("project_name", 42),
        ("author_name", None),
        ("description", ["a", "list"]),
        ("license", {"a": "dict"}),
        ("ci", True),
        ("project_name", "\udcff\udcfe"),  # bytes that are not UTF-8, as cookiecutter saves them
        ("project_slug", "../outside"),
        ("module_name", "click"),
    ],
    ids=repr,
)
def test_bad_answer_in_a_replay_file_gets_one_line(tmp_path, field, value):
    replay = _replay_file(tmp_path, **{field: value})
    output = tmp_path / "out"
    output.mkdir()

    result = cli("--replay-file", str(replay), "-o", str(output), str(ROOT))

    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Invalid {field} "), result.output
    assert list(output.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "out",
        "replay.json",
    ]


def test_existing_project_is_never_overwritten(tmp_path):
    assert run_cookiecutter(str(ROOT), cwd=tmp_path).returncode == 0
    project = tmp_path / "my-ds-project"
    (project / "README.md").write_text("my own work\n")
    before = sorted(p.relative_to(project) for p in project.rglob("*"))

    refused = run_cookiecutter(str(ROOT), cwd=tmp_path)
    assert refused.returncode == 1
    assert "already exists" in refused.stdout + refused.stderr

    forced = run_cookiecutter("--overwrite-if-exists", str(ROOT), cwd=tmp_path)
    output = (forced.stdout + forced.stderr).strip()
    assert forced.returncode == 1
    assert len(output.splitlines()) == 1 and "never overwrites" in output, output

    assert (project / "README.md").read_text() == "my own work\n"
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before


def test_a_folder_claimed_by_another_run_is_left_alone(tmp_path):
    """What a second run finds while the first writes: the first run's claim."""
    project = tmp_path / "my-ds-project"
    project.mkdir()
    (project / CLAIM).touch()

    result = run_cookiecutter("--overwrite-if-exists", str(ROOT), cwd=tmp_path)

    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1
    assert len(output.splitlines()) == 1 and "being generated by another run" in output, output
    assert [path.name for path in project.iterdir()] == [CLAIM]


def test_concurrent_generations_into_one_folder_do_not_mix(tmp_path):
    """Three runs with --overwrite-if-exists into one empty folder: one wins whole."""
    (tmp_path / "my-ds-project").mkdir()
    runs = [
        subprocess.Popen(
            [str(COOKIECUTTER), "--no-input", "-f", str(ROOT), f"author_name=Run {n}"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(3)
    ]
    outputs = [(run.wait(timeout=300), run.stdout.read().strip()) for run in runs]

    winners = [n for n, (code, _) in enumerate(outputs) if code == 0]
    assert len(winners) == 1, outputs
    for code, output in outputs:
        if code != 0:
            assert code == 1 and len(output.splitlines()) == 1, output
            assert "another run" in output or "not empty" in output, output
    project = tmp_path / "my-ds-project"
    authors = tomllib.loads((project / "pyproject.toml").read_text())["project"]["authors"]
    assert authors[0]["name"] == f"Run {winners[0]}"
    license_text = (project / "LICENSE").read_text()
    assert [f"Run {n}" in license_text for n in range(3)] == [n in winners for n in range(3)]
    assert not (project / CLAIM).exists()


TEMPLATE_SYNTAX = [
    "{{ 7*7 }}",
    "{% raw %}",
    "{% raw %}x{% endraw %}",
    "{# not a comment #}",
    "{{ cookiecutter.project_slug }}",
    "{%- if true %}yes{% endif %}",
    "${{ github.ref }}",
    "}} {{",
]


@pytest.mark.parametrize("syntax", TEMPLATE_SYNTAX)
def test_answers_are_data_never_templates(bake, syntax):
    """cookiecutter renders given values through Jinja; the template keeps them literal."""
    project = bake(
        project_name=f"Name {syntax}",
        project_slug="literal",
        author_name=f"Author {syntax}",
        description=f"About {syntax}",
    )
    assert (project / "README.md").read_text().startswith(f"# Name {syntax}\n\nAbout {syntax}\n")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert pyproject["description"] == f"About {syntax}"
    assert pyproject["authors"][0]["name"] == f"Author {syntax}"
    assert f"Author {syntax}" in (project / "LICENSE").read_text()


def test_a_template_in_the_project_name_is_not_run_to_make_the_slug(cookies):
    """The derived answers are made from the name as typed, not from what Jinja makes of it."""
    result = cookies.bake(extra_context={"project_name": "Churn {{ 6*7 }}"}, template=str(ROOT))
    assert result.exception is None, result.exception
    assert result.project_path.name == "churn-6-7"


def test_default_answers_are_valid():
    answers = json.loads(Path(ROOT, "cookiecutter.json").read_text())
    answers.update(project_slug="my-ds-project", module_name="my_ds_project")
    validate(answers)


def test_readme_states_the_supported_pythons():
    """PYTHON_VERSIONS in hooks/answers.py is the one list; the README names its range."""
    options = (ROOT / "README.md").read_text().split("## Options", 1)[1]
    assert f"`{PYTHON_VERSIONS[0]}` to `{PYTHON_VERSIONS[-1]}`" in options


@pytest.mark.slow
def test_every_import_of_a_project_environment_is_a_refused_module_name(ready_project):
    """hooks/project_imports.txt covers the project's real dependency closure and dev tools:
    every top-level name installed by `make setup` (importlib.metadata knows them)."""
    from tests.generated import sh

    listing = sh(
        ".venv/bin/python -c 'import importlib.metadata as m; print(*m.packages_distributions())'",
        ready_project,
    ).stdout.split()
    own = tomllib.loads((ready_project / "pyproject.toml").read_text())["tool"]["hatch"]
    own_module = own["build"]["targets"]["wheel"]["packages"][0].split("/")[-1]
    missing = sorted({name.lower() for name in listing} - project_imports() - {own_module})
    assert not missing, f"add these lines to hooks/project_imports.txt: {' '.join(missing)}"
