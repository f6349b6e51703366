"""Turn a dataset name or path into a concrete location, format and options.

Rules: a URL (``scheme://...``) is used as is; a bare name (no ``/``, no suffix) is a
catalog entry; any other relative path is relative to ``data/``; absolute paths are
allowed inside the project only. Containment is checked on the normalised path, not the
resolved one, so a ``data/raw`` symlinked to a big disk keeps working.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from . import catalog, config, formats
from .catalog import DatasetEntry
from .errors import DatasetNotFoundError, UnsafePathError

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class Target:
    """A resolved dataset: where it is, its format, and its catalog entry if any."""

    root: Path
    location: str  # absolute local path or URL
    format: str
    entry: DatasetEntry | None = None
    local: Path | None = None  # set for local files
    load_options: dict[str, Any] = field(default_factory=dict)
    save_options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        """Catalog name, None for a plain path."""
        return self.entry.name if self.entry else None

    @property
    def label(self) -> str:
        """How to refer to it in messages."""
        return repr(self.name) if self.entry else self.location


def is_url(text: str) -> bool:
    """True for ``scheme://...`` strings (``file://`` included)."""
    return bool(_URL_RE.match(text))


def is_name(text: str | os.PathLike[str]) -> bool:
    """True if ``text`` is a bare catalog name: a str with no separator and no suffix."""
    return isinstance(text, str) and "/" not in text and "\\" not in text and "." not in text


def local_path(text: str | os.PathLike[str], root: Path) -> Path:
    """Absolute, normalised path for ``text`` (relative to ``data/``), inside ``root``."""
    raw = str(text)
    if raw.startswith("file://"):
        from urllib.parse import unquote, urlparse

        raw = unquote(urlparse(raw).path)
    p = Path(raw).expanduser()
    if not p.is_absolute():
        p = root / "data" / p
    normal = Path(os.path.normpath(p))
    if not normal.is_relative_to(root):
        raise UnsafePathError(
            f"{str(text)!r} points outside the project ({normal}); keep data inside {root}"
        )
    return normal


def resolve(
    name_or_path: str | os.PathLike[str],
    fmt: str | None = None,
    root: Path | None = None,
    *,
    need_format: bool = True,
) -> Target:
    """Resolve a catalog name, a path relative to ``data/``, or a URL to a :class:`Target`.

    With ``need_format=False`` an unknown suffix gives an empty format instead of an error
    (fingerprints do not care about the format).

    Raises:
        DatasetNotFoundError: a bare name that is not in the catalog.
        UnsafePathError: a path outside the project.
        FormatError: unknown format.
        CatalogError: the catalog is malformed.
    """
    r = config.project_root() if root is None else root
    entry: DatasetEntry | None = None
    where: str | os.PathLike[str] = name_or_path
    if is_name(name_or_path):
        cat_file = config.paths(r).catalog
        entries = catalog.read(cat_file)
        if name_or_path not in entries:
            known = ", ".join(sorted(entries)) or "none"
            raise DatasetNotFoundError(
                f"dataset {name_or_path!r} is not in {cat_file} (known: {known}); add it with "
                f"`dslc data add {name_or_path} PATH`, or pass a path such as 'raw/file.csv'"
            )
        entry = entries[str(name_or_path)]
        where = entry.location
    text = str(where)
    if is_url(text) and not text.startswith("file://"):
        location, local = text, None
    else:
        local = local_path(where, r)
        location = str(local)
    chosen = fmt or (entry.format if entry else None)
    if chosen:
        format_name = formats.normalize(chosen)
    elif need_format:
        format_name = formats.infer(location)
    else:
        format_name = formats.SUFFIXES.get(PurePath(location).suffix.lower(), "")
    return Target(
        root=r,
        location=location,
        format=format_name,
        entry=entry,
        local=local,
        load_options=dict(entry.load_options) if entry else {},
        save_options=dict(entry.save_options) if entry else {},
    )


def is_raw(path: Path, root: Path) -> bool:
    """True if ``path`` is under ``data/raw`` (lexically or once symlinks are resolved)."""
    raw = root / "data" / "raw"
    if path.is_relative_to(raw):
        return True
    try:
        return path.resolve().is_relative_to(raw.resolve())
    except OSError:
        return False
