"""Catalog bookkeeping behind ``dslc data add|verify``: record datasets and detect drift."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from . import catalog, config, formats, locate
from .catalog import DatasetEntry
from .errors import CatalogError, DatasetNotFoundError, DslcError, UnsafePathError
from .fingerprint import Progress, fingerprint_path, fingerprint_url

Status = Literal["ok", "changed", "missing", "unrecorded", "error"]


@dataclass(frozen=True)
class Check:
    """Outcome of verifying one catalog entry."""

    name: str
    status: Status
    location: str
    recorded: str | None = None
    current: str | None = None
    detail: str = ""


def _locate_for_add(path: str, root: Path) -> tuple[str, Path | None]:
    """(location to store, local path or None). Shell paths first, then data/-relative."""
    if locate.is_url(path) and not path.startswith("file://"):
        return path, None
    p = Path(path).expanduser()
    if not p.is_absolute() and not (Path.cwd() / p).exists():
        p = root / "data" / p  # `dslc data add iris raw/iris.csv` from anywhere
    try:
        local = locate.local_path(p.absolute(), root)
    except UnsafePathError:
        raise UnsafePathError(
            f"{path!r} points outside the project; keep data inside {root}"
        ) from None
    if not local.exists():
        raise DatasetNotFoundError(f"{path!r} does not exist ({local}); give an existing path")
    rel = Path(os.path.relpath(local, root / "data")).as_posix()
    return rel, local


def add(
    name: str,
    path: str,
    *,
    parents: Sequence[str] = (),
    description: str | None = None,
    format: str | None = None,
    replace_existing: bool = False,
    on_hash: Callable[[str], None] | None = None,
    on_bytes: Progress | None = None,
    root: Path | None = None,
) -> DatasetEntry:
    """Record a dataset and its fingerprint in ``data/catalog.yml`` (atomic rewrite).

    ``path`` is a shell path (relative to the working directory), else relative to
    ``data/``, or a URL. ``on_hash(location)`` is called once validation passed, before
    hashing starts (for progress display).

    Raises:
        CatalogError: bad name, unknown parent, name taken (without ``replace_existing``).
        DatasetNotFoundError: ``path`` does not exist.
        FormatError: unknown format, or none given for a path without a known suffix.
    """
    r = config.project_root() if root is None else root
    catalog.check_name(name)
    location, local = _locate_for_add(path, r)
    fmt = formats.normalize(format) if format else None
    if fmt is None and not (local is not None and local.is_dir()):
        formats.infer(location)  # fail now, not at the first load
    cat_file = config.paths(r).catalog
    cache = config.state_dir(r) / "fingerprints.json"
    with catalog.locked(config.state_dir(r) / "catalog.lock"):
        _check_parents(name, parents, cat_file, catalog.read(cat_file), replace_existing)
    if on_hash is not None:
        on_hash(location)
    fp = (
        fingerprint_path(local, cache, on_bytes)
        if local is not None
        else fingerprint_url(location, None, cache, on_bytes)
    )
    with catalog.locked(config.state_dir(r) / "catalog.lock"):
        entries = catalog.read(cat_file)  # again: it may have changed while hashing
        _check_parents(name, parents, cat_file, entries, replace_existing)
        old = entries.get(name)
        base = old or DatasetEntry(name=name, location=location)
        entry = replace(
            base,
            location=location,
            format=fmt or (base.format if old and old.location == location else None),
            description=description if description is not None else base.description,
            parents=tuple(parents) if parents else base.parents,
            fingerprint=fp,
        )
        entries[name] = entry
        catalog.write(cat_file, entries)
    return entry


def _check_parents(
    name: str,
    parents: Sequence[str],
    cat_file: Path,
    entries: dict[str, DatasetEntry],
    replace_existing: bool,
) -> None:
    missing = [p for p in parents if p not in entries]
    if missing:
        raise CatalogError(f"parent(s) {', '.join(missing)} not in {cat_file}; add them first")
    if name in parents:
        raise CatalogError(f"dataset {name!r} cannot be its own parent")
    if name in entries and not replace_existing:
        raise CatalogError(
            f"dataset {name!r} is already in {cat_file}; pass --replace to update it"
        )


def verify(
    root: Path | None = None,
    on_start: Callable[[int, int, DatasetEntry], None] | None = None,
    on_bytes: Progress | None = None,
) -> Iterator[Check]:
    """Re-fingerprint every catalog entry and yield a :class:`Check` for each.

    ``on_start(i, n, entry)`` is called before each dataset (for progress display).
    """
    r = config.project_root() if root is None else root
    entries = catalog.read(config.paths(r).catalog)
    cache = config.state_dir(r) / "fingerprints.json"
    for i, entry in enumerate(entries.values(), 1):
        if on_start is not None:
            on_start(i, len(entries), entry)
        yield _check(entry, r, cache, on_bytes)


def _check(entry: DatasetEntry, root: Path, cache: Path, on_bytes: Progress | None) -> Check:
    try:
        target = locate.resolve(entry.name, root=root, need_format=False)
    except DslcError as exc:
        return Check(entry.name, "error", entry.location, entry.fingerprint, detail=str(exc))
    try:
        if target.local is not None:
            if not target.local.exists():
                return Check(entry.name, "missing", target.location, entry.fingerprint)
            now = fingerprint_path(target.local, cache, on_bytes)
        else:
            opts = target.load_options.get("storage_options")
            now = fingerprint_url(target.location, opts, cache, on_bytes)
    except FileNotFoundError:
        return Check(entry.name, "missing", target.location, entry.fingerprint)
    except OSError as exc:
        return Check(entry.name, "error", target.location, entry.fingerprint, detail=str(exc))
    if entry.fingerprint is None:
        return Check(entry.name, "unrecorded", target.location, None, now)
    status: Status = "ok" if now == entry.fingerprint else "changed"
    return Check(entry.name, status, target.location, entry.fingerprint, now)
