"""What a run records about where it came from: source, git state, environment.

MLflow derives its source and git tags from ``sys.argv[0]``, which is ``-c`` for
``python -c`` and the kernel launcher in a notebook, so they are missing exactly where
data scientists work. dslc derives them from the project root instead.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .. import _gitinfo as gitinfo

# Versions worth knowing when a result cannot be reproduced. Read from package metadata:
# importing them would cost seconds.
KEY_PACKAGES = ("mlflow", "pandas", "numpy", "scikit-learn")

TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_BRANCH = "mlflow.source.git.branch"
TAG_GIT_DIRTY = "dslc.git.dirty"
TAG_GIT_CHANGES = "dslc.git.changes"
_MAX_CHANGES_TAG = 4000  # characters; MLflow keeps tag values up to 8000
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
# The command that started the run, so it can be run again from the project root.
TAG_ENTRY_POINT = "dslc.entry_point"


@dataclass(frozen=True)
class Source:
    """Where the code that starts a run lives."""

    stem: str  # short name for run names: "train", "01-explore", "python-c"
    name: str  # path relative to the project root when possible
    kind: str  # MLflow source type: "LOCAL" or "NOTEBOOK"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except (ValueError, OSError):
        return str(path)


def _notebook_path() -> str | None:
    """Path of the running notebook, when the front end tells (Jupyter, VS Code)."""
    main = sys.modules.get("__main__")
    vscode = getattr(main, "__vsc_ipynb_file__", None)
    if isinstance(vscode, str) and vscode:
        return vscode
    # Jupyter Server (2.x) gives each kernel the notebook path, relative to its root dir.
    session = os.environ.get("JPY_SESSION_NAME", "")
    return session if session.endswith(".ipynb") else None


def _in_kernel() -> bool:
    return "ipykernel" in sys.modules


def source(root: Path) -> Source:
    """Describe the running program: script, module, notebook or ``python -c``."""
    notebook = _notebook_path()
    if notebook:
        path = Path(notebook)
        return Source(path.stem, _relative(path, root), "NOTEBOOK")
    if _in_kernel():
        return Source("notebook", "notebook", "NOTEBOOK")
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0 == "-c":
        return Source("python-c", "python -c", "LOCAL")
    if not argv0 or argv0 == "-":
        return Source("interactive", "interactive", "LOCAL")
    path = Path(argv0)
    # `python -m pkg` runs pkg/__main__.py: the package name says more than "__main__".
    stem = path.parent.name if path.stem == "__main__" else path.stem
    return Source(stem or "python", _relative(path, root), "LOCAL")


def entry_point(root: Path, src: Source) -> str | None:
    """The command that started this program, as it can be run again from the root.

    ``python -m pkg.mod args`` for a module, ``python <path from the root> args`` for a
    script, the notebook's path for a notebook; None for ``python -c``, an interactive
    session or a notebook whose path the front end does not tell.
    """
    if src.kind == "NOTEBOOK":
        return src.name if src.name.endswith(".ipynb") else None
    argv = sys.argv if sys.argv else [""]
    if argv[0] in ("", "-", "-c"):
        return None
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    module = getattr(spec, "name", None)
    if isinstance(module, str) and module:  # `python -m`: the module, not its file
        command = ["python", "-m", module.removesuffix(".__main__"), *argv[1:]]
    else:
        command = ["python", _relative(Path(argv[0]), root), *argv[1:]]
    return shlex.join(command)


def run_name(stem: str, now: datetime | None = None) -> str:
    """Readable default run name: ``<stem>-<YYYYmmdd-HHMMSS>`` in local time."""
    return f"{stem}-{(now or datetime.now()):%Y%m%d-%H%M%S}"


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Installed versions of dslc and the key packages (those that are installed)."""
    found: dict[str, str] = {}
    for dist in ("dslc", *KEY_PACKAGES):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return found


def git_tags(root: Path) -> dict[str, str]:
    """Commit, branch and dirty flag of the project's repository (empty outside git)."""
    state = gitinfo.git_state(root)
    if state is None:
        return {}
    tags = {TAG_GIT_COMMIT: state.commit, TAG_GIT_DIRTY: str(state.dirty).lower()}
    if state.changed:
        # Which files differed from the commit: `dslc reproduce` accepts a run whose only
        # changes were data bookkeeping (dvc.lock, *.dvc, the catalog). Too many: not listed.
        listed = json.dumps(list(state.changed))
        tags[TAG_GIT_CHANGES] = listed if len(listed) <= _MAX_CHANGES_TAG else "many"
    if state.branch:
        tags[TAG_GIT_BRANCH] = state.branch
    return tags


def environment_tags(root: Path, project: str, src: Source) -> dict[str, str]:
    """Tags describing the project, the source and the software environment."""
    versions = package_versions()
    tags = {
        "dslc.project": project,
        "dslc.cwd": _relative(Path.cwd(), root) or ".",
        "dslc.python": platform.python_version(),
        TAG_SOURCE_NAME: src.name,
        TAG_SOURCE_TYPE: src.kind,
    }
    command = entry_point(root, src)
    if command is not None:
        tags[TAG_ENTRY_POINT] = command
    if "dslc" in versions:
        tags["dslc.version"] = versions["dslc"]
    for dist in KEY_PACKAGES:
        if dist in versions:
            tags[f"dslc.pkg.{dist}"] = versions[dist]
    return tags
