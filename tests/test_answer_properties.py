"""Whatever is typed at any prompt: one refusal line with nothing written, or a project
whose TOML, YAML, JSON and Python files parse and hold the answers exactly as typed.

Answers are drawn by hypothesis for every prompt: arbitrary Unicode (controls, lone
surrogates, emoji, Jinja syntax), plus values shaped like good ones so that many are
accepted. A small sample of accepted answers then gets `make setup` and `make test`.
"""

from __future__ import annotations

import ast
import json
import re
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter
from hypothesis import HealthCheck, Phase, assume, event, example, given, settings
from hypothesis import strategies as st

from hooks.answers import (
    BIDI_CONTROLS,
    LICENSES,
    PROBLEMS,
    PYTHON_VERSIONS,
    RULES,
    project_imports,
)
from tests.conftest import ROOT, seed_environment

# Any code point, lone surrogates (bytes that are not UTF-8) and controls included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
# Printable text on one line, with the characters that break quoting most often.
TRICKY = st.sampled_from(['"', "'", "\\", "{{", "}}", "{%", "%}", "{#", "$", "`", "#", ":"])
READABLE = (
    st.lists(
        st.one_of(
            st.text(
                st.characters(
                    codec="utf-8",
                    exclude_categories=("Cc", "Cs", "Zl", "Zp"),
                    exclude_characters="".join(BIDI_CONTROLS),
                ),
                min_size=1,
                max_size=10,
            ),
            TRICKY,
        ),
        min_size=1,
        max_size=8,
    )
    .map("".join)
    .map(str.strip)
)


# Values shaped like good answers, for every prompt (a new prompt needs one here).
GOOD: dict[str, st.SearchStrategy[str]] = {
    "project_name": READABLE,
    "project_slug": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}[A-Za-z0-9]", fullmatch=True),
    "module_name": st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True),
    "author_name": READABLE,
    "author_email": st.emails(),
    "description": st.one_of(st.just(""), READABLE),
    "python_version": st.sampled_from(PYTHON_VERSIONS),
    "license": st.sampled_from(LICENSES),
    "ci": st.sampled_from(["github", "none"]),
    "data_versioning": st.sampled_from(["dvc", "none"]),
    "problem": st.sampled_from(PROBLEMS),
    "dslc_source": st.one_of(
        st.sampled_from(["auto", "index"]),
        st.from_regex(
            r"git\+https://[a-z]{1,12}\.example/[A-Za-z0-9._~/@#=-]{1,40}", fullmatch=True
        ),
    ),
}
# The prompts whose default is made from other answers: sometimes left to that default.
DERIVED = ("project_slug", "module_name")
# What spoils an answer: anything at all, or (for the module) the name of an installed package.
SPOILED = {"module_name": st.one_of(ANY_TEXT, st.sampled_from(sorted(project_imports())))}


@st.composite
def answers(draw, good: dict[str, st.SearchStrategy[str]] = GOOD, spoil: bool = True):
    """Good-shaped answers to every prompt, with at most one replaced by arbitrary text."""
    drawn = {field: draw(strategy) for field, strategy in good.items()}
    for field in DERIVED:
        if draw(st.booleans()):
            del drawn[field]
    spoiled = draw(st.one_of(st.none(), st.sampled_from(sorted(good)))) if spoil else None
    if spoiled:
        drawn[spoiled] = draw(SPOILED.get(spoiled, ANY_TEXT))
    return drawn


def test_every_prompt_is_drawn():
    assert set(GOOD) == set(RULES)


def generate(answers: dict[str, str], output: Path) -> tuple[Path | None, str | None]:
    """Generate into `output`: the project, or the refusal's message."""
    try:
        return Path(
            cookiecutter(str(ROOT), no_input=True, extra_context=answers, output_dir=str(output))
        ), None
    except Exception as error:
        if type(error).__name__ != "Refused":
            raise
        return None, str(error)


def _parse(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        tomllib.loads(text)
    elif path.suffix in (".yml", ".yaml") or path.name == "MLproject":
        yaml.safe_load(text)
    elif path.suffix in (".json", ".ipynb"):
        json.loads(text)
    elif path.suffix == ".py":
        ast.parse(text, filename=str(path))


def check_project(project: Path, answers: dict[str, str]) -> None:
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.relative_to(project).parts:
            _parse(path)
    metadata = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert metadata["description"] == answers.get("description", metadata["description"])
    author = metadata["authors"][0]
    assert (author["name"], author["email"]) == (
        answers.get("author_name", author["name"]),
        answers.get("author_email", author["email"]),
    )
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(f"# {answers.get('project_name', 'My DS Project')}\n")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(answers=answers())
def test_any_answers_are_refused_in_one_line_or_give_a_valid_project(answers):
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder)
        project, refusal = generate(answers, output)
        event("refused" if refusal else "accepted")
        if refusal is not None:
            event(refusal.split(":")[0].split(" '")[0])
            match = re.match(r"Invalid (\w+) ", refusal)
            assert match and match.group(1) in RULES and "\n" not in refusal, refusal
            assert list(output.iterdir()) == [], "a refused generation writes nothing"
        else:
            check_project(project, answers)


HOSTILE = {
    "project_name": 'Churn "𝔘" {{ 7*7 }} {% raw %} – مشروع 🚀',
    "project_slug": "hostile",
    "author_name": 'Zoë O\'Brien, "Jr" \\ 👩‍🔬',
    "author_email": "zoe.o'brien+ds@example.co.uk",
    "description": "Predicts “churn” 🇫🇷 界界界 {# not a comment #} ends with a backslash \\",
    "python_version": PYTHON_VERSIONS[0],
}


@pytest.mark.slow
@settings(
    max_examples=1,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@example(answers=HOSTILE)
# `make setup` finds a local Python of at least the oldest supported version. The drawn
# project is made without DVC: the explicit HOSTILE example and every other slow test
# cover the default, so both options get `make setup` and `make test` here.
@given(
    answers=answers(
        GOOD
        | {
            "dslc_source": st.just("auto"),
            "python_version": st.just(PYTHON_VERSIONS[0]),
            "data_versioning": st.just("none"),
        },
        spoil=False,
    )
)
def test_accepted_answers_give_a_project_whose_setup_and_tests_pass(ready_project, answers):
    from tests.generated import sh

    with tempfile.TemporaryDirectory() as folder:
        project, _ = generate(answers, Path(folder))
        assume(project is not None)
        seed_environment(project, ready_project)  # then synced to this project's lock
        sh("make setup && make test", project)
