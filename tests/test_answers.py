"""Bad answers are refused with one clear line, exit status 1 and nothing on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cookiecutter

BAD_ANSWERS = [
    ("project_name", ""),
    ("project_name", "two\nlines"),
    ("project_slug", "my project"),
    ("project_slug", "a/b"),
    ("project_slug", "../escape"),
    ("project_slug", ".."),
    ("project_slug", "-leading-dash"),
    ("module_name", "1st_model"),
    ("module_name", "my-model"),
    ("module_name", "MyModel"),
    ("module_name", "class"),
    ("module_name", "match"),
    ("module_name", "json"),
    ("module_name", "os"),
    ("module_name", "dslc"),
    ("module_name", "mlflow"),
    ("module_name", "pandas"),
    ("module_name", "sklearn"),
    ("module_name", "tests"),
    ("author_name", ""),
    ("author_email", "not-an-email"),
    ("author_email", "a@b"),
    ("author_email", "a b@example.com"),
    ("description", "first\nsecond"),
    ("python_version", "3.9"),
    ("python_version", "3.14"),
    ("python_version", "3"),
    ("python_version", "3.11.4"),
    ("python_version", "three"),
    ("license", "GPL-3.0"),
    ("license", "mit"),
    ("ci", "gitlab"),
    ("dslc_source", "whatever"),
    ("dslc_source", "pip install dslc"),
]
IDS = [f"{field}={value!r}" for field, value in BAD_ANSWERS]


@pytest.mark.parametrize(("field", "value"), BAD_ANSWERS, ids=IDS)
def test_bad_answer_is_refused_before_anything_is_written(cookies, tmp_path, field, value):
    result = cookies.bake(extra_context={field: value}, template=str(ROOT))

    assert result.exit_code == -1
    assert type(result.exception).__name__ == "InvalidAnswer"
    message = str(result.exception)
    assert field in message and repr(value) in message
    assert "\n" not in message


@pytest.mark.parametrize(("field", "value"), BAD_ANSWERS, ids=IDS)
def test_bad_answer_on_the_command_line_gets_one_line(tmp_path, field, value):
    result = run_cookiecutter(str(ROOT), f"{field}={value}", cwd=tmp_path)

    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert output.startswith(f"Invalid {field} ")
    assert list(tmp_path.iterdir()) == [], "nothing may be left on disk"


def test_existing_project_is_never_overwritten(tmp_path):
    assert run_cookiecutter(str(ROOT), cwd=tmp_path).returncode == 0
    project = tmp_path / "my-ds-project"
    (project / "README.md").write_text("my own work\n")
    before = sorted(p.relative_to(project) for p in project.rglob("*"))

    refused = run_cookiecutter(str(ROOT), cwd=tmp_path)
    assert refused.returncode == 1
    assert "already exists" in refused.stdout + refused.stderr

    forced = run_cookiecutter("--overwrite-if-exists", str(ROOT), cwd=tmp_path)
    output = forced.stdout + forced.stderr
    assert forced.returncode == 1
    assert "Traceback" not in output
    assert "never overwrites" in output

    assert (project / "README.md").read_text() == "my own work\n"
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before


def test_default_answers_are_valid():
    import json

    from hooks.answers import validate

    answers = json.loads(Path(ROOT, "cookiecutter.json").read_text())
    answers.update(project_slug="my-ds-project", module_name="my_ds_project")
    validate(answers)
