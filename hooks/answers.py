"""Validation of the template's answers, and the Jinja extension that applies it.

Why an extension and not only ``pre_gen_project.py``: cookiecutter prints a full traceback
whenever a hook exits non-zero, so a hook alone cannot give a user one clear line. Errors
raised while the answers are rendered, as long as they are one of the exception types
cookiecutter's CLI catches, are printed as a single line instead. ``cookiecutter.json``
renders ``__answers_checked`` last, through the ``validate_answers`` filter below, so every
answer is checked before anything is written to disk.

The rules are plain functions over a dict, so ``pre_gen_project.py`` (which runs for
tools that bypass prompting, such as replays) and the template's tests reuse them.
Only the standard library, Jinja2 and cookiecutter are imported: hooks must run with a
plain ``pip install cookiecutter``.
"""

from __future__ import annotations

import json
import keyword
import logging
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from cookiecutter.exceptions import FailedHookException

SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
LICENSES = ("MIT", "BSD-3-Clause", "Apache-2.0", "Proprietary")
CI_CHOICES = ("github", "none")

# Top-level import names the generated project depends on (directly or through dslc and
# the example pipeline). A module with one of these names would shadow the real package
# inside the project and break imports in confusing ways.
PROJECT_DEPENDENCIES = frozenset(
    {
        "dslc",
        "mlflow",
        "pandas",
        "numpy",
        "sklearn",
        "scipy",
        "matplotlib",
        "pyarrow",
        "fsspec",
        "yaml",
        "dotenv",
        "tqdm",
        "pandera",
        "joblib",
        "filelock",
        "sqlalchemy",
        "alembic",
        "flask",
        "pytest",
        "nbstripout",
        "nbformat",
        "nbclient",
        "nbconvert",
        "ipykernel",
        "jupyter",
        "ruff",
        "pre_commit",
        "cookiecutter",
        "cruft",
    }
)
# Names that collide with the project's own folders and tooling conventions.
RESERVED_MODULES = frozenset({"src", "tests", "test", "notebooks", "data", "models", "docs"})

# A distribution name per PEP 508 is also a safe folder name: no spaces, separators or "..".
_SLUG = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_MODULE = re.compile(r"^[a-z_][a-z0-9_]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PYTHON = re.compile(r"^3\.(\d+)$")
_DIRECT_REFERENCE = re.compile(r"^(git\+(https|ssh|file)://|file://|https://)\S+$")


class InvalidAnswer(FailedHookException):
    """An answer breaks a rule. Subclassing a type that cookiecutter's CLI catches makes it
    print just our message (one line) and exit 1, with no traceback."""


def _stdlib_modules() -> frozenset[str]:
    return frozenset(getattr(sys, "stdlib_module_names", ())) | frozenset(sys.builtin_module_names)


def _field(answers: Mapping[str, Any], name: str) -> str:
    value = answers.get(name, "")
    return value if isinstance(value, str) else str(value)


def _fail(field: str, value: str, rule: str) -> InvalidAnswer:
    return InvalidAnswer(f"Invalid {field} {value!r}: {rule}")


def _check_text(field: str, value: str, *, required: bool = True) -> None:
    if required and not value.strip():
        raise _fail(field, value, "it must not be empty")
    if "\n" in value or "\r" in value:
        raise _fail(field, value, "it must fit on one line")


def check_project_name(value: str) -> None:
    _check_text("project_name", value)


def check_project_slug(value: str) -> None:
    if not _SLUG.match(value) or ".." in value:
        raise _fail(
            "project_slug",
            value,
            "it names the project folder and package, so use only letters, digits, '-', '_'"
            " and '.', starting and ending with a letter or digit (e.g. 'churn-model')",
        )


def check_module_name(value: str) -> None:
    if not _MODULE.match(value):
        raise _fail(
            "module_name",
            value,
            "it must be a lowercase Python identifier: letters, digits and '_', not starting"
            " with a digit (e.g. 'churn_model')",
        )
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        raise _fail("module_name", value, "it is a Python keyword; choose another name")
    if value in _stdlib_modules():
        raise _fail(
            "module_name", value, "it would shadow the standard library module of that name"
        )
    if value in PROJECT_DEPENDENCIES:
        raise _fail("module_name", value, "it would shadow a package the project depends on")
    if value in RESERVED_MODULES:
        raise _fail("module_name", value, "it clashes with a folder of the project layout")


def check_author_email(value: str) -> None:
    if not _EMAIL.match(value):
        raise _fail("author_email", value, "expected an address like 'name@example.com'")


def check_python_version(value: str) -> None:
    match = _PYTHON.match(value)
    if not match or value not in SUPPORTED_PYTHONS:
        raise _fail(
            "python_version",
            value,
            "give the minimum supported Python as 3.N, one of " + ", ".join(SUPPORTED_PYTHONS),
        )


def _check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise _fail(field, value, "choose one of " + ", ".join(choices))


def check_dslc_source(value: str) -> None:
    if value in ("auto", "index") or _DIRECT_REFERENCE.match(value):
        return
    raise _fail(
        "dslc_source",
        value,
        "use 'auto' (the template's own source, pinned), 'index' (dslc from your package"
        " index) or a URL such as 'git+https://host/org/ds-template@v0.1.0#subdirectory=helpers'",
    )


CHECKS: dict[str, Callable[[str], None]] = {
    "project_name": check_project_name,
    "project_slug": check_project_slug,
    "module_name": check_module_name,
    "author_name": lambda value: _check_text("author_name", value),
    "author_email": check_author_email,
    "description": lambda value: _check_text("description", value, required=False),
    "python_version": check_python_version,
    "license": lambda value: _check_choice("license", value, LICENSES),
    "ci": lambda value: _check_choice("ci", value, CI_CHOICES),
    "dslc_source": check_dslc_source,
}


def validate(answers: Mapping[str, Any]) -> None:
    """Raise InvalidAnswer for the first answer that breaks its rule."""
    for field, check in CHECKS.items():
        check(_field(answers, field))


# --- where dslc comes from ----------------------------------------------------------------

# What the generated project needs from dslc: MLflow tracking, pandera data checks and
# the notebook runner and renderer behind `make report`.
DSLC = "dslc[tracking,checks,report]"
_VERSION_LINE = re.compile(r'^version\s*=\s*"([^"]+)"', re.MULTILINE)


def dslc_version(repo_dir: Path) -> str:
    """The version in ``helpers/pyproject.toml``: dslc and the template share it."""
    text = (repo_dir / "helpers" / "pyproject.toml").read_text(encoding="utf-8")
    match = _VERSION_LINE.search(text)
    if not match:
        raise InvalidAnswer(f"Broken template: no version in {repo_dir}/helpers/pyproject.toml")
    return match.group(1)


def _git(repo_dir: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo_dir), *args], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def _is_url(template: str) -> bool:
    return "://" in template or template.startswith(("gh:", "gl:", "bb:", "git@", "git+"))


def _git_requirement(origin: str, commit: str) -> str:
    """``dslc @ git+<origin>@<commit>``: pip and uv want ``git+`` and no scp-like ``host:path``."""
    scp_like = re.match(r"^([\w.-]+@[\w.-]+):(?!//)(.+)$", origin)
    if scp_like:  # git@host:org/repo.git -> ssh://git@host/org/repo.git
        origin = f"ssh://{scp_like.group(1)}/{scp_like.group(2)}"
    if not origin.startswith("git+"):
        origin = "git+" + origin
    return f"{DSLC} @ {origin}@{commit}#subdirectory=helpers"


def _template_dir(answers: Mapping[str, Any]) -> Path:
    """The template's folder. cookiecutter gives ``_repo_dir`` as typed (``.`` for
    ``cookiecutter .``) and renders files from inside the template, so a relative one
    cannot be resolved; cruft gives none. This module is imported from that folder."""
    given = Path(_field(answers, "_repo_dir"))
    return given if given.is_absolute() else Path(__file__).resolve().parents[1]


def dslc_requirement(answers: Mapping[str, Any]) -> str:
    """The PEP 508 requirement by which the generated project gets dslc.

    'auto' pins the template's exact version without any package index of ours: a
    template used from a git URL gives the same repository at the commit in use; a
    template used from a folder gives that folder's ``helpers/``.

    cruft (create, update, link) renders from a temporary clone and gives no ``_repo_dir``,
    but ``_template`` (the URL or folder it cloned, never the clone) and ``_commit`` (the
    commit it renders). The pin then names that repository and commit, so that each
    ``cruft update`` moves it to the new commit.
    """
    source = _field(answers, "dslc_source")
    repo_dir = _template_dir(answers)
    if source == "index":
        return f"{DSLC}=={dslc_version(repo_dir)}"
    if source != "auto":
        return f"{DSLC} @ {source}"
    template = _field(answers, "_template")
    cruft_commit = _field(answers, "_commit")
    if cruft_commit and template:
        # cruft only clones git repositories: a folder given to it is one, so pin its commit.
        origin = template if _is_url(template) else Path(template).resolve().as_uri()
        return _git_requirement(origin, cruft_commit)
    if _is_url(template):
        origin = _git(repo_dir, "remote", "get-url", "origin")
        commit = _git(repo_dir, "rev-parse", "HEAD")
        if not origin or not commit:
            raise InvalidAnswer(
                f"Cannot pin dslc: {repo_dir} is not a git clone of {template}; "
                "set dslc_source to a URL or 'index'"
            )
        return _git_requirement(origin, commit)
    return f"{DSLC} @ {(repo_dir / 'helpers').as_uri()}"


# --- the Jinja extension ------------------------------------------------------------------


class _DropHookTraceback(logging.Filter):
    """Our hooks print their own one-line reason; cookiecutter's traceback adds nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


def initials(name: str) -> str:
    """'Ada Lovelace' -> 'al', for notebook names (NN-initials-description.ipynb)."""
    letters = [word[0] for word in re.findall(r"[A-Za-z]+", name)]
    return "".join(letters).lower() or "xx"


def json_text(value: str) -> str:
    """A JSON string literal as nbstripout writes it (UTF-8, not \\u-escaped), so a
    freshly baked notebook is already in the form the pre-commit hook leaves it."""
    return json.dumps(value, ensure_ascii=False)


def docstring(value: str, width: int = 96) -> str:
    """Free text made safe inside a triple-quoted docstring and wrapped for line-length."""
    escaped = value.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if escaped.endswith('"'):
        escaped = escaped[:-1] + '\\"'
    return "\n".join(textwrap.wrap(escaped, width, break_long_words=False)) or escaped


def _validate_answers(answers: Mapping[str, Any]) -> str:
    validate(answers)
    return "ok"


def register(environment: Any) -> None:
    """Add the template's filters to a Jinja environment. Older copies of this file call it
    by name from a newer one (see TemplateExtension): keep its name and signature."""
    environment.filters["validate_answers"] = _validate_answers
    environment.filters["dslc_requirement"] = dslc_requirement
    environment.filters["initials"] = initials
    environment.filters["json_text"] = json_text
    environment.filters["docstring"] = docstring
    environment.filters["template_dir"] = lambda answers: str(_template_dir(answers))
    hooks_logger = logging.getLogger("cookiecutter.hooks")
    # By name: a newer copy of this file defines its own class of the same name.
    if not any(type(f).__name__ == "_DropHookTraceback" for f in hooks_logger.filters):
        hooks_logger.addFilter(_DropHookTraceback())


_IMPORTED_SOURCE = Path(__file__).read_bytes()


@cache
def _extension_class() -> type:
    """The Jinja extension class, built on first use. jinja2.ext costs ~0.2 s to import and
    the pre-generation hook imports this module for ``validate`` alone, in every run."""
    from jinja2.ext import Extension

    class TemplateExtension(Extension):
        """Adds the template's filters: answer checks, the dslc requirement, safe quoting."""

        def __init__(self, environment: Any) -> None:
            super().__init__(environment)
            source = Path(__file__).read_bytes()
            if source == _IMPORTED_SOURCE:
                register(environment)
                return
            # `cruft update` renders the project's template commit, then the newest one, in
            # one process and from one clone checked out in turn; Python imports this module
            # once, at the older commit. Take the filters from the file as it is now, or the
            # newer commit would render with the older rules and a change to them (to the
            # dslc pin, say) would never reach a project: both sides of cruft's diff agree.
            newer: dict[str, Any] = {"__name__": f"{__name__}_on_disk", "__file__": __file__}
            exec(compile(source, __file__, "exec"), newer)
            newer["register"](environment)

    return TemplateExtension


def __getattr__(name: str) -> Any:
    # cookiecutter.json names "hooks.answers.TemplateExtension"; Jinja resolves it by getattr.
    if name == "TemplateExtension":
        return _extension_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
