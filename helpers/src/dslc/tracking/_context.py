"""Where a run came from: source, git state, environment. MLflow derives these from
``sys.argv[0]`` (``-c``, or the kernel launcher in a notebook); dslc from the project root."""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .. import _gitinfo as gitinfo

# Worth knowing when a result cannot be reproduced; read from metadata (importing costs seconds).
KEY_PACKAGES = ("mlflow", "pandas", "numpy", "scikit-learn")


@dataclass(frozen=True)
class Source:
    """Where the code that starts a run lives."""

    stem: str  # short name for run names: "train", "01-explore", "python-c"
    name: str  # path relative to the project root when possible
    kind: str  # MLflow source type: "LOCAL" or "NOTEBOOK"
    entry_point: str | None = None  # the command to run it again from the root, if any


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except (ValueError, OSError):
        return str(path)


def source(root: Path) -> Source:
    """Describe the running program: script, module, notebook or ``python -c``."""
    # The running notebook's path, when the front end tells: VS Code sets it in __main__,
    # Jupyter Server (2.x) gives each kernel the path relative to its root dir.
    notebook = getattr(sys.modules.get("__main__"), "__vsc_ipynb_file__", None)
    if not (isinstance(notebook, str) and notebook):
        session = os.environ.get("JPY_SESSION_NAME", "")
        notebook = session if session.endswith(".ipynb") else None
    if notebook:
        path = Path(notebook)
        name = _relative(path, root)
        return Source(path.stem, name, "NOTEBOOK", name if name.endswith(".ipynb") else None)
    if "ipykernel" in sys.modules:
        return Source("notebook", "notebook", "NOTEBOOK")
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0 == "-c":
        return Source("python-c", "python -c", "LOCAL")
    if not argv0 or argv0 == "-":
        return Source("interactive", "interactive", "LOCAL")
    path = Path(argv0)
    name = _relative(path, root)
    # `python -m pkg` runs pkg/__main__.py: the package name says more than "__main__".
    stem = path.parent.name if path.stem == "__main__" else path.stem
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    module = getattr(spec, "name", None)
    if isinstance(module, str) and module:  # `python -m`: the module, not its file
        command = ["python", "-m", module.removesuffix(".__main__"), *sys.argv[1:]]
    else:
        command = ["python", name, *sys.argv[1:]]
    return Source(stem or "python", name, "LOCAL", shlex.join(command))


@lru_cache(maxsize=1)
def package_tags() -> dict[str, str]:
    """``dslc.version`` and ``dslc.pkg.<name>`` tags of the installed key packages."""
    tags: dict[str, str] = {}
    for dist in ("dslc", *KEY_PACKAGES):
        with contextlib.suppress(PackageNotFoundError):
            tags["dslc.version" if dist == "dslc" else f"dslc.pkg.{dist}"] = version(dist)
    return tags


def run_tags(root: Path, project: str, src: Source) -> dict[str, str]:
    """Tags describing the project, the source, the software and the git state."""
    found = {
        "dslc.project": project,
        "dslc.cwd": _relative(Path.cwd(), root) or ".",
        "dslc.python": platform.python_version(),
        "mlflow.source.name": src.name,
        "mlflow.source.type": src.kind,
        **package_tags(),
    }
    if src.entry_point is not None:
        found["dslc.entry_point"] = src.entry_point
    if (state := gitinfo.git_state(root)) is not None:
        found["mlflow.source.git.commit"] = state.commit
        found["dslc.git.dirty"] = str(state.dirty).lower()
        if state.branch:
            found["mlflow.source.git.branch"] = state.branch
    return found
