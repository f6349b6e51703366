"""Load and save datasets by catalog name or path; atomic writes; immutable raw data.

>>> from dslc import data
>>> df = data.load("raw/iris.csv")          # path relative to data/
>>> data.save(df, "interim/iris.parquet")   # atomic; format from the suffix
>>> df = data.load("iris")                  # catalog name (data/catalog.yml)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from . import catalog, config, events, formats, locate
from .errors import DatasetNotFoundError, DslcError, RawDataWriteError
from .fingerprint import fingerprint_path, fingerprint_url
from .locate import Target

__all__ = ["entries", "fingerprint", "load", "path", "save"]

_log = logging.getLogger(__name__)
NameOrPath = str | os.PathLike[str]


def path(name_or_path: NameOrPath) -> Path | str:
    """Where a dataset lives: an absolute Path, or the URL for remote datasets.

    Nothing is read or created; the file need not exist.
    """
    target = locate.resolve(name_or_path)
    return target.local if target.local is not None else target.location


def entries() -> dict[str, catalog.DatasetEntry]:
    """All catalog entries, by name (validated)."""
    return catalog.read(config.paths().catalog)


def _cache_file(root: Path) -> Path:
    return config.state_dir(root) / "fingerprints.json"


def _fingerprint_target(target: Target, on_bytes: Any = None) -> str:
    if target.local is None:
        opts = target.load_options.get("storage_options")
        return fingerprint_url(target.location, opts, _cache_file(target.root), on_bytes)
    if not target.local.exists():
        raise _missing(target)
    return fingerprint_path(target.local, _cache_file(target.root), on_bytes)


def fingerprint(path_or_name: NameOrPath) -> str:
    """Full-content fingerprint ``"sha256:<hex>"`` of a dataset file or folder.

    Cached on size, mtime and inode, so an unchanged file costs a stat.
    """
    return _fingerprint_target(locate.resolve(path_or_name, need_format=False))


def _missing(target: Target) -> DatasetNotFoundError:
    what = f"dataset {target.name!r}" if target.entry else "file"
    return DatasetNotFoundError(
        f"{what} not found at {target.location}; check the path (relative paths start at "
        f"data/) or create it with data.save"
    )


def _publish(target: Target, role: str, fp: str | None = None) -> None:
    if not events.has_listeners():
        return  # nobody records usage: skip hashing
    if fp is None:
        try:
            fp = _fingerprint_target(target)
        except (OSError, DslcError) as exc:
            _log.warning("could not fingerprint %s: %s", target.location, exc)
    recorded = target.entry.fingerprint if target.entry else None
    if role == "input" and fp and recorded and fp != recorded:
        # Reading drifted data is allowed (it may be intended) but should not be silent.
        _log.warning(
            "dataset %r changed since it was recorded (%s, now %s); run `dslc data verify`",
            target.name,
            recorded[:19],
            fp[:19],
        )
    events.publish(
        events.DatasetUse(target.name, target.location, fp, target.format, role)  # type: ignore[arg-type]
    )


def load(name_or_path: NameOrPath, *, format: str | None = None, **options: Any) -> Any:
    """Read a dataset (catalog name, path relative to ``data/``, or URL).

    Args:
        name_or_path: ``"iris"`` (catalog), ``"raw/iris.csv"``, or ``"s3://b/x.parquet"``.
        format: override the format (default: catalog entry, else the suffix).
        **options: reader keyword arguments; they override the entry's ``load_options``.

    Raises:
        DatasetNotFoundError, UnsafePathError, FormatError, CatalogError.
    """
    target = locate.resolve(name_or_path, fmt=format)
    fmt = formats.get(target.format)
    opts = {**target.load_options, **options}
    if target.local is not None:
        if not target.local.exists():  # a folder is fine (partitioned parquet)
            raise _missing(target)
        obj = fmt.load(str(target.local), **opts)
    else:
        storage = opts.pop("storage_options", None)
        with formats.open_url(target.location, "rb", storage) as fh:
            obj = fmt.load(fh, **opts)
    _publish(target, "input")
    return obj


def save(
    obj: Any,
    name_or_path: NameOrPath,
    *,
    force: bool = False,
    format: str | None = None,
    **options: Any,
) -> Path | str:
    """Write ``obj`` atomically; returns where it was written.

    Saving through a catalog name records the new fingerprint in ``data/catalog.yml``.
    Nothing is written if the format, the object or the path is wrong.

    Args:
        obj: a DataFrame (csv, parquet, json, feather, excel) or any object (pickle, joblib).
        name_or_path: catalog name, path relative to ``data/``, or URL.
        force: allow writing under ``data/raw`` (raw data is otherwise immutable).
        format: override the format (default: catalog entry, else the suffix).
        **options: writer keyword arguments; they override the entry's ``save_options``.

    Raises:
        RawDataWriteError, DatasetNotFoundError, UnsafePathError, FormatError, CatalogError.
    """
    target = locate.resolve(name_or_path, fmt=format)
    fmt = formats.get(target.format)
    formats.check_savable(fmt, obj)
    opts = {**fmt.save_defaults, **target.save_options, **options}
    if target.local is None:
        storage = opts.pop("storage_options", None)
        with formats.open_url(target.location, "wb", storage) as fh:
            fmt.save(obj, fh, **opts)
        where: Path | str = target.location
    else:
        dest = target.local
        if not force and locate.is_raw(dest, target.root):
            raise RawDataWriteError(
                f"refusing to write {dest}: data/raw is immutable; save under data/interim or "
                "data/processed, or pass force=True"
            )
        if dest.is_dir():
            raise DslcError(f"cannot save to {dest}: it is a folder; give a file name")
        dest.parent.mkdir(parents=True, exist_ok=True)
        from .atomic import atomic_path

        with atomic_path(dest) as tmp:
            fmt.save(obj, str(tmp), **opts)
        where = dest
    fp = _record(target) if target.entry is not None else None
    _publish(target, "output", fp)
    return where


def _record(target: Target) -> str | None:
    """Store the new fingerprint of a catalog dataset in the catalog."""
    assert target.entry is not None
    try:
        fp = _fingerprint_target(target)
    except (OSError, DslcError) as exc:
        _log.warning("saved %s but could not fingerprint it: %s", target.label, exc)
        return None
    cat_file = config.paths(target.root).catalog
    with catalog.locked(config.state_dir(target.root) / "catalog.lock"):
        current = catalog.read(cat_file)  # re-read: others may have changed it
        entry = current.get(target.entry.name)
        if entry is not None and entry.fingerprint != fp:
            from dataclasses import replace

            current[entry.name] = replace(entry, fingerprint=fp)
            catalog.write(cat_file, current)
    return fp
