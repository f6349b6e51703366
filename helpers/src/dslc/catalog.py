"""The data catalog file (``data/catalog.yml``): schema, validation, atomic updates.

Schema::

    datasets:
      iris:
        location: raw/iris.csv      # relative to data/, or an fsspec URL
        format: csv                 # optional, inferred from the suffix
        description: Fisher's iris measurements
        parents: []                 # names of the datasets it was made from
        load_options: {}            # keyword arguments for the reader
        save_options: {}            # keyword arguments for the writer
        fingerprint: sha256:...     # recorded full-content hash
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import atomic, formats
from .errors import CatalogError, DslcError

FIELDS = (
    "location",
    "format",
    "description",
    "parents",
    "load_options",
    "save_options",
    "fingerprint",
)
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_FP_RE = re.compile(r"^[a-z0-9_]+:[0-9a-f]+$")


@dataclass(frozen=True)
class DatasetEntry:
    """One validated catalog entry."""

    name: str
    location: str
    format: str | None = None
    description: str | None = None
    parents: tuple[str, ...] = ()
    load_options: dict[str, Any] = field(default_factory=dict)
    save_options: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None

    def to_yaml(self) -> dict[str, Any]:
        """The entry as written in the file (empty optional fields left out)."""
        out: dict[str, Any] = {"location": self.location}
        for key in FIELDS[1:]:
            value = getattr(self, key)
            if value:
                out[key] = list(value) if key == "parents" else value
        return out


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name, else raise CatalogError."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise CatalogError(
            f"invalid dataset name {name!r}: use a letter then letters, digits, '_' or '-' "
            "(no '/' or '.', which mark paths)"
        )
    return name


def _entry(file: Path, name: Any, raw: Any) -> DatasetEntry:
    def bad(problem: str) -> CatalogError:
        return CatalogError(f"{file}: dataset {name!r}: {problem}")

    try:
        check_name(name)
    except CatalogError as exc:
        raise bad(str(exc)) from None
    if not isinstance(raw, Mapping):
        raise bad(f"expected a mapping of {', '.join(FIELDS)}, got {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - set(FIELDS))
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
    location = raw.get("location")
    if not isinstance(location, str) or not location.strip():
        raise bad("'location' is required: a path relative to data/ or a URL")
    fmt = raw.get("format")
    if fmt is not None:
        if not isinstance(fmt, str):
            raise bad(f"'format' must be a string, got {type(fmt).__name__}")
        try:
            fmt = formats.normalize(fmt)
        except DslcError as exc:
            raise bad(str(exc)) from None
    for key in ("load_options", "save_options"):
        if not isinstance(raw.get(key) or {}, Mapping):
            raise bad(f"{key!r} must be a mapping of keyword arguments")
    desc = raw.get("description")
    if desc is not None and not isinstance(desc, str):
        raise bad("'description' must be a string")
    parents = raw.get("parents") or []
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise bad("'parents' must be a list of dataset names")
    fp = raw.get("fingerprint")
    if fp is not None and (not isinstance(fp, str) or not _FP_RE.match(fp)):
        raise bad(f"'fingerprint' must look like 'sha256:<hex>', got {fp!r}")
    return DatasetEntry(
        name=name,
        location=location.strip(),
        format=fmt,
        description=desc,
        parents=tuple(parents),
        load_options=dict(raw.get("load_options") or {}),
        save_options=dict(raw.get("save_options") or {}),
        fingerprint=fp,
    )


def _split_header(text: str) -> tuple[str, str]:
    """Leading comment block (kept on rewrite: it usually documents the schema) and body."""
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
        i += 1
    return "".join(lines[:i]), "".join(lines[i:])


def read(file: Path) -> dict[str, DatasetEntry]:
    """Parse and validate the catalog; an absent or empty file is an empty catalog.

    Raises:
        CatalogError: invalid YAML, wrong types, unknown keys or unknown parents, in one
            line naming the file, the entry and the problem.
    """
    import yaml

    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read {file}: {exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise CatalogError(f"{file}: invalid YAML{line}: {problem}; fix the file") from None
    if doc is None:
        return {}
    if not isinstance(doc, Mapping) or set(map(str, doc)) - {"datasets"}:
        raise CatalogError(f"{file}: the top level must be a single 'datasets:' mapping")
    datasets = doc.get("datasets") or {}
    if not isinstance(datasets, Mapping):
        raise CatalogError(f"{file}: 'datasets' must map dataset names to entries")
    entries = {str(n): _entry(file, n, raw) for n, raw in datasets.items()}
    for entry in entries.values():
        for parent in entry.parents:
            if parent not in entries:
                raise CatalogError(
                    f"{file}: dataset {entry.name!r}: parent {parent!r} is not in the catalog"
                )
    return entries


def write(file: Path, entries: Mapping[str, DatasetEntry]) -> None:
    """Atomically rewrite the catalog with ``entries`` (keeping the leading comments)."""
    import yaml

    try:
        header, _ = _split_header(Path(file).read_text(encoding="utf-8"))
    except FileNotFoundError:
        header = ""
    body = yaml.safe_dump(
        {"datasets": {name: e.to_yaml() for name, e in entries.items()}},
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    Path(file).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(Path(file), header + body)


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Serialise read-modify-write of the catalog across processes (POSIX advisory lock).

    ``lock_file`` lives in the project's state folder (``.dslc``), not next to the data.

    Without it, two runs saving different datasets at once could each drop the other's
    fingerprint update. On platforms without fcntl the lock is a no-op.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    Path(lock_file).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
