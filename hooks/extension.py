"""The Jinja extension cookiecutter loads for this template (`_extensions` in cookiecutter.json).

It is the template's only code inside cookiecutter's own process, and does three things
that cannot be done from a hook script (hooks run in a subprocess, after the project
folder exists, and cookiecutter prints a traceback when one fails):

- It adds the filters of hooks/answers.py, which the template's files use. A filter that
  refuses (an invalid answer, a folder in use) raises `Refused`, which cookiecutter's
  command line prints as one line. The project folder's name goes through
  `project_folder`, which checks every answer before cookiecutter creates that folder;
  rendering pre_gen_project.py claims the folder before any file is written.
- It keeps answers as data. cookiecutter renders every value through Jinja, including the
  ones people give (`key=value`, a config or replay file, cruft's .cruft.json), so
  `{{ 7*7 }}` would become 49. Jinja only runs on the template's own text here: anything
  else reaches it as a literal.
- It loads hooks/answers.py from the file each time. `cruft update` renders the project's
  template commit and the newest one in one process, from one clone checked out in turn;
  Python would import the module once, and the newest commit would render with the older
  rules, filters and dslc pin. This module is imported once, so it stays small: what
  changes from one template version to the next belongs in hooks/answers.py.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from cookiecutter.exceptions import OutputDirExistsException
from jinja2 import Environment
from jinja2.ext import Extension

TEMPLATE = Path(__file__).resolve().parents[1]
PROJECT_FOLDER = "{{cookiecutter.project_slug}}"


class Refused(OutputDirExistsException):
    """An answer or the project folder breaks a rule; the message says which, in one line.

    cookiecutter's command line prints a few exception types as one line; of those, this
    is the one that its hook runner passes on untouched (a FailedHookException there gets
    a traceback and the project folder deleted, even when it is another run's)."""


def load_answers() -> ModuleType:
    """hooks/answers.py as it is on disk now, as a module of its own (not in sys.modules)."""
    spec = importlib.util.spec_from_file_location(
        "ds_template_answers", TEMPLATE / "hooks" / "answers.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _refusing_in_one_line(
    function: Callable[..., Any], invalid: type[Exception]
) -> Callable[..., Any]:
    @functools.wraps(function)
    def checked(*args: Any) -> Any:
        try:
            return function(*args)
        except invalid as error:
            raise Refused(str(error)) from None

    return checked


def _template_text() -> tuple[frozenset[str], tuple[str, ...]]:
    """What Jinja may run: the values in cookiecutter.json, the hook scripts, and the
    paths in the project folder (cookiecutter renders their names)."""
    context = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
    texts = {value for value in context.values() if isinstance(value, str)}
    hooks = (TEMPLATE / "hooks").glob("*_project.*")
    texts |= {hook.read_text(encoding="utf-8") for hook in hooks}
    folder = TEMPLATE / PROJECT_FOLDER
    paths = (path.relative_to(folder).as_posix() for path in folder.rglob("*"))
    return frozenset(texts), tuple(path for path in paths if "{" in path)


class TemplateExtension(Extension):
    """Adds the template's filters and keeps answers out of Jinja's reach."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        answers = load_answers()
        for name, function in answers.FILTERS.items():
            environment.filters[name] = _refusing_in_one_line(function, answers.InvalidAnswer)
        self._template_text: tuple[frozenset[str], tuple[str, ...]] | None = None

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        if name is not None:
            return source  # a file of the template, loaded by its path
        if source == PROJECT_FOLDER:
            return "{{ cookiecutter | project_folder }}"
        if self._template_text is None:
            self._template_text = _template_text()
        texts, paths = self._template_text
        # Folders come with the project's absolute path in front, files relative to it.
        path = source.replace(os.sep, "/")
        if source in texts or any(path == p or path.endswith("/" + p) for p in paths):
            return source
        return "{{ " + _string_literal(source) + " }}"  # an answer: printed exactly as it is


def _string_literal(text: str) -> str:
    """`text` as a Jinja string literal, which Jinja gives back exactly (line ends too)."""
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
