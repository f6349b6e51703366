"""Project root, ``.env`` loading, standard paths and settings (helpers/README.md)."""

from __future__ import annotations

import io
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._atomic import read_regular
from .errors import ConfigError, ProjectNotFoundError

__all__ = [
    "Paths", "artifact_root", "load_env", "paths", "project_name", "project_root", "settings",
    "tracking_uri",
]  # fmt: skip

_ROOT_ENV = "DSLC_PROJECT_ROOT"

# pyproject.toml parse results keyed on (path, mtime_ns, size): project_root() runs on
# every data.load, and re-parsing TOML each time would be wasted work.
_pyproject_cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}
# .env files already loaded, with the (mtime_ns, size) seen, so load_env is a stat. Two
# threads may both load a changed file: harmless, since loading never overrides.
_env_loaded: dict[Path, tuple[int, int]] = {}


def _read_pyproject(path: Path) -> dict[str, Any]:
    """Parsed ``pyproject.toml`` or {} when absent; ConfigError when it is invalid TOML."""
    try:
        st = path.stat()
    except OSError:
        return {}
    key = (st.st_mtime_ns, st.st_size)
    if (cached := _pyproject_cache.get(path)) and cached[0] == key:
        return cached[1]
    try:
        data = tomllib.loads(read_regular(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"cannot read {path}: {exc}; fix the file (it must be valid TOML)"
        ) from None
    _pyproject_cache[path] = (key, data)
    return data


def project_root(start: Path | None = None) -> Path:
    """Return the project root (absolute): ``DSLC_PROJECT_ROOT`` when set, else the nearest
    folder upward from ``start`` (default: the working directory) whose ``pyproject.toml``
    has a ``[tool.dslc]`` table; never derived from ``__file__`` (dslc is installed)."""
    if env := os.environ.get(_ROOT_ENV, "").strip():
        root = Path(env).expanduser()
        if not root.is_dir():
            raise ConfigError(
                f"{_ROOT_ENV}={env!r} is not an existing folder; point it at the project root "
                "or unset it"
            )
        return root.resolve()
    here = Path(start or Path.cwd()).expanduser().resolve()
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        tool = _read_pyproject(folder / "pyproject.toml").get("tool")
        if isinstance(tool, dict) and isinstance(tool.get("dslc"), dict):
            return folder
    raise ProjectNotFoundError(
        f"no dslc project found at or above {here} (no pyproject.toml with a [tool.dslc] "
        f"table); run inside a project made from ds-template, or set {_ROOT_ENV}"
    )


def _root(root: Path | None) -> Path:
    return Path(root).expanduser().resolve() if root is not None else project_root()


def load_env(root: Path | None = None) -> None:
    """Load ``<root>/.env`` into ``os.environ`` without overriding variables already set."""
    env_file = _root(root) / ".env"
    try:
        st = env_file.stat()
    except OSError:
        return
    key = (st.st_mtime_ns, st.st_size)
    if _env_loaded.get(env_file) == key:
        return
    from dotenv import load_dotenv  # deferred: keeps `import dslc` light

    try:
        load_dotenv(stream=io.StringIO(read_regular(env_file).decode("utf-8")), override=False)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in a value
        raise ConfigError(f"cannot load {env_file}: {exc}; fix the file (copy .env.example) "
                          "or remove it") from None  # fmt: skip
    _env_loaded[env_file] = key


def state_dir(root: Path) -> Path:
    """``<root>/.dslc``: dslc's caches and locks, inside the project and owned by its user."""
    folder = root / ".dslc"
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        # Ignore itself, so caches stay out of git even if the project's .gitignore lacks it.
        (folder / ".gitignore").write_text("*\n", encoding="utf-8")
    return folder


@dataclass(frozen=True)
class Paths:
    """Standard folders and files of a project, all absolute (the root: :func:`project_root`)."""

    data: Path
    raw: Path
    interim: Path
    processed: Path
    external: Path
    notebooks: Path
    models: Path
    reports: Path
    figures: Path
    catalog: Path


def paths(root: Path | None = None) -> Paths:
    """Return the project's standard :class:`Paths` (nothing is created)."""
    r = _root(root)
    data = r / "data"
    return Paths(
        data=data,
        raw=data / "raw",
        interim=data / "interim",
        processed=data / "processed",
        external=data / "external",
        notebooks=r / "notebooks",
        models=r / "models",
        reports=r / "reports",
        figures=r / "reports" / "figures",
        catalog=data / "catalog.yml",
    )


def settings(root: Path | None = None) -> dict[str, Any]:
    """Return the ``[tool.dslc]`` table of the root ``pyproject.toml`` (empty if none)."""
    table = _read_pyproject(_root(root) / "pyproject.toml").get("tool", {}).get("dslc", {})
    return dict(table) if isinstance(table, dict) else {}


def project_name(root: Path | None = None) -> str:
    """Return ``[project].name`` of the root ``pyproject.toml``, else the root folder name."""
    r = _root(root)
    project = _read_pyproject(r / "pyproject.toml").get("project")
    name = project.get("name") if isinstance(project, dict) else None
    return name if isinstance(name, str) and name.strip() else r.name


def refuse_password(url: str, what: str) -> None:
    """ConfigError for a URL holding a password: team settings are committed, never secret."""
    if urlsplit(url).password is not None:
        raise ConfigError(f"{what} holds a password, and it would be committed: give it"
                          " without one (credentials go in .env)")  # fmt: skip


def tracking_uri(root: Path | None = None) -> str:
    """Return ``MLFLOW_TRACKING_URI`` (after loading ``.env``), else the team's
    ``tracking_uri`` of ``[tool.dslc]``, else the embedded store
    ``sqlite:///<absolute root>/mlflow.db`` (never relative to the working directory)."""
    r = _root(root)
    load_env(r)
    if uri := os.environ.get("MLFLOW_TRACKING_URI", "").strip():
        return uri
    if uri := str(settings(r).get("tracking_uri") or "").strip():
        refuse_password(uri, "tracking_uri in [tool.dslc] of pyproject.toml")
        return uri
    return f"sqlite:///{(r / 'mlflow.db').as_posix()}"


def artifact_root(root: Path | None = None) -> str:
    """Return the ``file://`` URI of ``<root>/mlartifacts`` (artifacts of the embedded store)."""
    return (_root(root) / "mlartifacts").as_uri()
