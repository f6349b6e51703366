"""The rules every answer must follow, and how answers are written into the project's files.

Plain functions over plain values, standard library only: the tests call them directly, and
the template's Jinja extension (hooks/extension.py) hands them to cookiecutter as filters.
A rule takes an answer and returns what is wrong with it, or None; RULES names the rule of
every prompt in cookiecutter.json, so a new option is one line there, for example
``"ci": choice("github", "none")``.

Answers are data: they land in TOML, JSON, YAML, Markdown and Python files, quoted by the
filters below, and a rule refuses what no quoting can carry (control characters, text
that is not UTF-8, names that would shadow an import).
"""

from __future__ import annotations

import json
import keyword
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Mapping
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from typing import Any

# The Python versions a project may start from: this list alone sets the prompt's accepted
# values, the classifiers and the CI matrix (filter `and_newer`) and the tests' matrix.
# Not 3.10: its support ended in October 2026, and the projects' dev tools (pre-commit 4.7)
# need 3.11, so `make setup` could not resolve them for it.
PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
LICENSES = ("MIT", "BSD-3-Clause", "Apache-2.0", "Proprietary")
# The example's problem. The template holds a file per problem where they differ, named
# `<name>.<problem>.<suffix>`; the post-generation hook keeps the chosen one as `<name>.<suffix>`.
PROBLEMS = ("classification", "regression")

Rule = Callable[[str], "str | None"]


class InvalidAnswer(ValueError):
    """An answer, or the place the project would go, breaks a rule. The message is one line."""


# --- the rules ------------------------------------------------------------------------------


def choice(*options: str) -> Rule:
    """One of a fixed set of values, given as text (a cookiecutter choice variable would
    turn a wrong `key=value` into a traceback)."""

    def rule(value: str) -> str | None:
        return None if value in options else "choose one of " + ", ".join(options)

    return rule


def text(*, required: bool = True, max_length: int = 200) -> Rule:
    """Free text on one line: names and descriptions."""

    def rule(value: str) -> str | None:
        if required and not value:
            return "it must not be empty"
        if value != value.strip():
            return "remove the spaces at its start or end"
        if len(value) > max_length:
            return f"keep it to {max_length} characters or fewer"
        return None

    return rule


_SLUG = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_MODULE = re.compile(r"[a-z_][a-z0-9_]*")
_NAME_LENGTH = 64  # folder and package names; file systems allow 255 bytes per name


def project_slug(value: str) -> str | None:
    if not _SLUG.fullmatch(value) or ".." in value or len(value) > _NAME_LENGTH:
        return (
            "it names the project folder and package, so use only letters, digits, '-', '_'"
            f" and '.', at most {_NAME_LENGTH}, starting and ending with a letter or digit"
            " (e.g. 'churn-model'); unless given, it is made from project_name"
        )
    return None


# Names a project module must not take, besides the standard library's: its own layout's
# folders, files that Python and pytest treat specially, and whatever the project imports.
_SPECIAL_MODULES = frozenset(
    {"src", "tests", "test", "notebooks", "data", "models", "docs", "reports"}
    | {"conftest", "setup", "sitecustomize", "usercustomize"}
)
# hooks/project_imports.txt: every top-level import name installed in a generated project's
# environment (its dependency closure, dev tools included). tests/test_answers.py checks it
# against a real `make setup` and says how to refresh it.
_PROJECT_IMPORTS = Path(__file__).with_name("project_imports.txt")


def project_imports() -> frozenset[str]:
    lines = _PROJECT_IMPORTS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip()[:1] not in ("", "#"))


def _standard_library() -> frozenset[str]:
    return frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)


def module_name(value: str) -> str | None:
    if not _MODULE.fullmatch(value) or len(value) > _NAME_LENGTH:
        return (
            "it must be a lowercase Python identifier: letters, digits and '_', not starting"
            f" with a digit, at most {_NAME_LENGTH} (e.g. 'churn_model'); unless given, it is"
            " project_slug in lower case, with '-' and '.' as '_'"
        )
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        return "it is a Python keyword; choose another name"
    if value.startswith("__") or value in _SPECIAL_MODULES:
        return "Python, pytest or the project layout give that name a meaning; choose another"
    if value in _standard_library():
        return "it would shadow the standard library module of that name"
    if value in project_imports():
        return "it would shadow a package the project installs (directly or through others)"
    return None


# A host name with at least one dot: 'a@localhost' and 'a@b' are not addresses for a package.
_DOMAIN = re.compile(
    r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.[A-Za-z]{2,63}"
)


def author_email(value: str) -> str | None:
    """An address the packaging tools accept: they parse it with email.headerregistry."""
    wrong = "expected an address like 'name@example.com'"
    if len(value) > 254:
        return wrong
    try:
        address = Address(addr_spec=value)
    except (ValueError, IndexError, HeaderParseError):
        return wrong
    # Address drops comments and spaces around the address: take it only as written.
    if address.addr_spec != value or not _DOMAIN.fullmatch(address.domain):
        return wrong
    return None


_URL = re.compile(
    r"(git\+(https|ssh|file)://|file://|https://)[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+"
)


def dslc_source(value: str) -> str | None:
    if value in ("auto", "index") or (_URL.fullmatch(value) and len(value) <= 2000):
        return None
    return (
        "use 'auto' (the template's own source, pinned), 'index' (dslc from your package"
        " index) or a URL such as 'git+https://host/org/ds-template@v0.1.0#subdirectory=helpers'"
    )


RULES: dict[str, Rule] = {
    "project_name": text(),
    "project_slug": project_slug,
    "module_name": module_name,
    "author_name": text(),
    "author_email": author_email,
    "description": text(required=False, max_length=500),
    "python_version": choice(*PYTHON_VERSIONS),
    "license": choice(*LICENSES),
    "ci": choice("github", "none"),
    "dslc_source": dslc_source,
    "data_versioning": choice("dvc", "none"),
    "problem": choice(*PROBLEMS),
}

# Characters no file may receive from an answer. Controls (NUL, tab, newline, escape...) and
# line separators break the one-line formats answers land in; lone surrogates (what Python
# makes of bytes that are not UTF-8) cannot be written at all; bidirectional overrides make
# source code read differently from how it runs.
_FORBIDDEN_CATEGORIES = {"Cc": "a control character", "Cs": "bytes that are not UTF-8"}
_FORBIDDEN_CATEGORIES |= {"Zl": "a line separator", "Zp": "a paragraph separator"}
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(value: str) -> str | None:
    """The rule every answer follows before its own."""
    for character in value:
        what = _FORBIDDEN_CATEGORIES.get(unicodedata.category(character))
        if what is None and character in BIDI_CONTROLS:
            what = "a bidirectional text control"
        if what:
            return f"it contains {what} ({character!r}); give printable text on one line"
    return None


def _shown(value: Any) -> str:
    """The value as the error message quotes it: repr (escapes controls), kept short."""
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:50]) + f" (+{len(value) - 50} more characters)"
    return repr(value)


def validate(answers: Mapping[str, Any]) -> None:
    """Raise InvalidAnswer, naming the field, the value and the rule, for the first answer
    that breaks its rule. Values may come from a hand-edited replay file: any type."""
    for field, rule in RULES.items():
        value = answers.get(field)
        if not isinstance(value, str):
            wrong = (
                "it is missing" if value is None else f"it must be text, not {type(value).__name__}"
            )
        else:
            wrong = printable(value) or rule(value)
        if wrong:
            raise InvalidAnswer(f"Invalid {field} {_shown(value)}: {wrong}")


# --- where the project goes -------------------------------------------------------------------

# Made inside the project folder, exclusively, before any file is written; removed when all
# are. A second generation into the same folder finds it and stops.
CLAIM = ".ds-template-generating"


def _destination(answers: Mapping[str, Any]) -> Path | None:
    """The project folder. cookiecutter gives `_output_dir`; cruft, which renders into
    folders of its own, gives none."""
    output = answers.get("_output_dir")
    return Path(output, answers["project_slug"]) if isinstance(output, str) else None


def project_folder(answers: Mapping[str, Any]) -> str:
    """The project folder's name, once every answer and the destination are checked.

    cookiecutter renders this name first of all, for every way of running it (prompts,
    --no-input, --replay, cruft, the API), and creates the folder right after: nothing is on
    disk yet.
    """
    validate(answers)
    folder = _destination(answers)
    if folder is not None:
        if any(marker in str(folder) for marker in ("{{", "{%", "{#")):
            raise InvalidAnswer(
                f"Cannot generate into {folder}: cookiecutter would run the Jinja syntax in"
                " that path ('{{', '{%' or '{#'); choose another --output-dir"
            )
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise InvalidAnswer(
                f"Cannot generate into {folder}: {existing} is a file, not a folder"
                " (check --output-dir and project_slug)"
            )
    return answers["project_slug"]


def claim_project_folder(answers: Mapping[str, Any]) -> str:
    """Claim the project folder, which cookiecutter has just made or (with
    --overwrite-if-exists) found, for this run alone; refuse one that holds anything."""
    folder = _destination(answers)
    if folder is None:
        return ""
    claim = folder / CLAIM
    try:
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        raise InvalidAnswer(
            f"{folder} is being generated by another run (it holds {CLAIM}); wait for it, or"
            " delete the folder if no generation is running"
        ) from None
    if any(entry.name != CLAIM for entry in os.scandir(folder)):
        claim.unlink()
        raise InvalidAnswer(
            f"{folder} already exists and is not empty; ds-template never overwrites a project"
            " (use `make update` inside it, or choose another project_slug)"
        )
    return ""


def release_project_folder(answers: Mapping[str, Any]) -> str:
    folder = _destination(answers)
    if folder is not None:
        (folder / CLAIM).unlink(missing_ok=True)
    return ""


# --- writing answers into files -----------------------------------------------------------


def toml_string(value: str) -> str:
    """A TOML basic string. Unlike JSON's, TOML's \\u escapes cannot pair surrogates, so
    characters outside the Basic Multilingual Plane (emoji) stay as they are (UTF-8)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) == "Cc" else c for c in escaped)
    return f'"{escaped}"'


def json_text(value: str) -> str:
    """A JSON string literal as nbstripout writes it (UTF-8, not \\u-escaped), so a
    freshly baked notebook is already in the form the pre-commit hook leaves it."""
    return json.dumps(value, ensure_ascii=False)


def _columns(word: str) -> int:
    """Columns a word takes in an editor, as ruff's line length counts them: wide
    characters (CJK, most emoji) two, combining marks and joiners none."""
    columns = 0
    for character in word:
        if character == "\ufe0f":  # emoji presentation: the character before it becomes wide
            columns += 1
        elif unicodedata.combining(character) or unicodedata.category(character) in (
            "Mn",
            "Me",
            "Cf",
        ):
            continue
        else:
            columns += 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1
    return columns


def docstring(value: str, width: int = 88) -> str:
    """Free text made safe inside a triple-quoted docstring and wrapped to `width` columns,
    so that the module passes ruff's line length whatever the text."""
    escaped = value.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if escaped.startswith('"'):  # `""""` would close an empty docstring
        escaped = "\\" + escaped
    if escaped.endswith('"'):
        escaped = escaped[:-1] + '\\"'
    lines: list[str] = []
    line: list[str] = []
    used = 0
    for word in escaped.split():
        if line and used + 1 + _columns(word) > width:
            lines.append(" ".join(line))
            line, used = [], 0
        used += _columns(word) + (1 if line else 0)
        line.append(word)
    lines.append(" ".join(line))
    return "\n".join(lines)


def initials(name: str) -> str:
    """'Ada Lovelace' -> 'al', for notebook names (NN-initials-description.ipynb)."""
    letters = [word[0] for word in re.findall(r"[A-Za-z]+", name)]
    return "".join(letters[:4]).lower() or "xx"


def and_newer(python_version: str) -> list[str]:
    """The supported Python versions from the project's minimum on: classifiers, CI matrix."""
    return list(PYTHON_VERSIONS[PYTHON_VERSIONS.index(python_version) :])


# --- where dslc comes from ------------------------------------------------------------------

# What the generated project needs from dslc: MLflow tracking, pandera data checks, the
# notebook runner and renderer behind `make report`, and SQLAlchemy for SQL sources.
DSLC = "dslc[tracking,checks,report,sql]"
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
    cannot be resolved; cruft gives none. This file lies in that folder."""
    given = answers.get("_repo_dir")
    if isinstance(given, str) and Path(given).is_absolute():
        return Path(given)
    return Path(__file__).resolve().parents[1]


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
    source = answers["dslc_source"]
    repo_dir = _template_dir(answers)
    if source == "index":
        return f"{DSLC}=={dslc_version(repo_dir)}"
    if source != "auto":
        return f"{DSLC} @ {source}"
    template = str(answers.get("_template") or "")
    cruft_commit = str(answers.get("_commit") or "")
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


# The filters templates use, by name (hooks/extension.py registers them).
FILTERS: dict[str, Callable[..., Any]] = {
    "project_folder": project_folder,
    "claim_project_folder": claim_project_folder,
    "release_project_folder": release_project_folder,
    "toml_string": toml_string,
    "json_text": json_text,
    "docstring": docstring,
    "initials": initials,
    "and_newer": and_newer,
    "dslc_requirement": dslc_requirement,
}
