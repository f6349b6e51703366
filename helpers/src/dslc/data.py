"""Load and save datasets by catalog name or path; atomic writes; immutable raw data.

>>> from dslc import data
>>> df = data.load("raw/iris.csv")          # path relative to data/
>>> data.save(df, "interim/iris.parquet")   # atomic; format from the suffix
>>> df = data.load("iris")                  # catalog name (data/catalog.yml)
>>> df = data.load("orders")                # a SQL source: runs its query
>>> df = data.load("orders@latest")         # its newest snapshot (dslc data snapshot)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from . import _catalog as catalog
from . import _events as events
from . import _formats as formats
from . import _lineage as lineage
from . import _locate as locate
from . import _sql as sql
from . import config
from ._fingerprint import Progress, check_regular, fingerprint_path
from ._locate import Target
from ._state import state_dir
from .errors import DatasetNotFoundError, DslcError, LocationError, RawDataWriteError, SqlError

__all__ = ["entries", "fingerprint", "load", "path", "save", "snapshot"]

_log = logging.getLogger(__name__)
NameOrPath = str | os.PathLike[str]
Role = Literal["input", "output"]


def path(name_or_path: NameOrPath) -> Path:
    """Where a dataset lives on this machine: an absolute Path (it need not exist yet).

    Nothing is read or created. Raises LocationError for a dataset that has no local
    path (a remote URL, a SQL source): load and save those by name or URL; the catalog
    keeps their location (``data.entries()[name].location``).
    """
    target = locate.resolve(name_or_path, need_format=False)
    if target.local is None:
        raise LocationError(
            f"{target.label} is not on this machine ({target.location}), so it has no path; "
            "load and save it by name or URL"
        )
    return target.local


def entries() -> dict[str, catalog.DatasetEntry]:
    """All catalog entries, by name (validated)."""
    root = config.project_root()
    return catalog.read(config.paths(root).catalog, catalog.cache_path(root))


def _cache_file(root: Path) -> Path:
    return state_dir(root) / "fingerprints.json"


def fingerprint_target(
    target: Target,
    on_bytes: Progress | None = None,
    *,
    trust_cache: bool = True,
    written: os.stat_result | None = None,
) -> str:
    """Full-content fingerprint of a resolved target (``trust_cache=False`` re-hashes;
    ``written``: the stat of the file as dslc has just written it). The first read of a
    DVC stage's output since ``data.save`` wrote it records its fingerprint in the catalog
    (see :func:`_fingerprint_saved`)."""
    try:
        fp = lineage.fingerprint(target, on_bytes, trust_cache=trust_cache, written=written)
    except FileNotFoundError:
        raise _missing(target) from None
    if target.entry is not None and target.entry.fingerprint is None and _dvc_output(target):
        _record(target)
    return fp


def fingerprint(path_or_name: NameOrPath) -> str:
    """Full-content fingerprint ``"sha256:<hex>"`` of a dataset file or folder.

    Cached on size, mtime, ctime and inode, so an unchanged file costs a stat.
    """
    return fingerprint_target(locate.resolve(path_or_name, need_format=False))


def _missing(target: Target) -> DatasetNotFoundError:
    what = f"dataset {target.name!r}" if target.entry else "file"
    return DatasetNotFoundError(
        f"{what} not found at {target.location}; check the path (relative paths start at "
        f"data/) or create it with data.save"
    )


def _publish(target: Target, role: Role, fp: str | None = None, query: str | None = None) -> None:
    """Tell listeners (tracking) that ``target`` was read or written."""
    if not events.has_listeners():
        return  # nobody records usage: skip hashing
    if fp is None and not target.is_sql:
        try:
            fp = fingerprint_target(target)
        except (OSError, DslcError) as exc:
            _log.warning("could not fingerprint %s: %s", target.location, exc)
    recorded = target.recorded
    if role == "input" and fp and recorded and fp != recorded:
        # Reading drifted data is allowed (it may be intended) but should not be silent.
        _log.warning(
            "dataset %r changed since it was recorded (%s, now %s); run `dslc data verify`",
            target.name,
            recorded[:19],
            fp[:19],
        )
    use = events.DatasetUse(target.name, target.location, fp, target.format, role, query)
    events.publish(use)


def _open_url(target: Target, mode: str) -> Any:
    """An fsspec file for a remote target (compression from its suffix), for ``with``."""
    import fsspec

    url = target.url or target.location
    return fsspec.open(url, mode, compression="infer", **(target.storage_options or {}))


def load(name_or_path: NameOrPath, *, format: str | None = None, **options: Any) -> Any:
    """Read a dataset (catalog reference, path relative to ``data/``, or URL).

    Args:
        name_or_path: ``"iris"`` (catalog), ``"orders@latest"`` (a snapshot of a SQL
            source), ``"raw/iris.csv"``, or ``"s3://b/x.parquet"``.
        format: override the format (default: catalog entry, else the suffix).
        **options: reader keyword arguments; they override the entry's ``load_options``.
            For a SQL source they go to ``pandas.read_sql``, and ``chunksize=N`` returns
            an iterator of DataFrames of N rows instead of one DataFrame.

    Raises:
        DatasetNotFoundError, UnsafePathError, LocationError, FormatError, CatalogError,
        SqlError.
    """
    target = locate.resolve(name_or_path, fmt=format, purpose="load", options=options)
    if target.is_sql:
        assert target.entry is not None and target.entry.sql is not None
        result = sql.read(target.entry.sql, target.entry.name, target.root, target.options)
        frames = result.frames if result.chunked else result.frame()
        _publish(target, "input", query=result.query)
        return frames
    fmt = formats.get(target.format)
    if target.local is not None:
        try:
            check_regular(target.local, target.local.stat())  # a FIFO would block the reader
        except FileNotFoundError:
            raise _missing(target) from None
        obj = fmt.load(str(target.local), **target.options)
    else:
        with _open_url(target, "rb") as fh:
            obj = fmt.load(fh, **target.options)
    _publish(target, "input")
    return obj


def _refuse_write(target: Target, force: bool) -> None:
    if target.snapshot is not None:
        raise RawDataWriteError(
            f"refusing to write {target.name!r}: snapshots are immutable; save under another "
            "name (data/interim or data/processed)"
        )
    if target.is_sql:
        raise RawDataWriteError(
            f"refusing to write {target.name!r}: it is a SQL source, and dslc never writes "
            "to databases; save the result under another name"
        )
    if force:
        return
    for where in (*([target.local] if target.local else []), *target.touches):
        if locate.is_raw(where, target.root):
            raise RawDataWriteError(
                f"refusing to write {where}: data/raw is immutable; save under data/interim "
                "or data/processed, or pass force=True"
            )


def save(
    obj: Any,
    name_or_path: NameOrPath,
    *,
    force: bool = False,
    format: str | None = None,
    **options: Any,
) -> None:
    """Write ``obj`` atomically (``data.path`` says where a local dataset went).

    Saving through a catalog name records the new fingerprint in ``data/catalog.yml``.
    Nothing is written if the format, the object or the path is wrong.

    Args:
        obj: a DataFrame (csv, parquet, json, feather, excel) or any object (pickle, joblib).
        name_or_path: catalog name, path relative to ``data/``, or URL.
        force: allow writing under ``data/raw`` (raw data is otherwise immutable).
        format: override the format (default: catalog entry, else the suffix).
        **options: writer keyword arguments; they override the entry's ``save_options``.

    Raises:
        RawDataWriteError, DatasetNotFoundError, UnsafePathError, LocationError,
        FormatError, CatalogError.
    """
    target = locate.resolve(name_or_path, fmt=format, purpose="save", options=options)
    _refuse_write(target, force)
    fmt = formats.get(target.format)
    formats.check_savable(fmt, obj)
    opts = {**fmt.save_defaults, **target.options}
    written: os.stat_result | None = None
    if target.local is None:
        with _open_url(target, "wb") as fh:
            fmt.save(obj, fh, **opts)
    else:
        dest = target.local
        if dest.is_dir():
            raise DslcError(f"cannot save to {dest}: it is a folder; give a file name")
        dest.parent.mkdir(parents=True, exist_ok=True)
        from ._atomic import atomic_path

        with atomic_path(dest) as tmp:
            fmt.save(obj, str(tmp), **opts)
            inode = tmp.stat().st_ino
        written = _written(dest, inode)
        if _update_dvc_pointer(target.root, dest):
            written = None  # dvc add put a copy of its cache object in its place
    fp = _fingerprint_saved(target, written)
    _publish(target, "output", fp)


def _written(dest: Path, inode: int) -> os.stat_result | None:
    """The stat of the file this save renamed to ``dest``, if it is still there."""
    try:
        st = dest.stat()
    except OSError:
        return None
    return st if st.st_ino == inode and stat.S_ISREG(st.st_mode) else None


def _fingerprint_saved(target: Target, written: os.stat_result | None) -> str | None:
    """The fingerprint of what was just saved under a catalog name, recorded in the catalog.

    Not for a DVC stage's output: DVC commits it when the stage ends and puts a copy back
    (new stamp), so a fingerprint taken now would be read again at the next load. Its
    recorded fingerprint is cleared instead, and the first later read records it.
    """
    if target.entry is None:
        return None
    if _dvc_output(target):
        _record(target, clear=True)
        return None
    return _record(target, written)


def _dvc_output(target: Target) -> bool:
    from . import _dvc as dvc

    local = target.local
    return local is not None and dvc.enabled(target.root) and dvc.stage_output(target.root, local)


def _saved_fingerprint(target: Target, written: os.stat_result | None) -> str | None:
    """``target``'s fingerprint after a save, or None (with a warning) if it cannot be
    had: the data was saved, only its fingerprint is missing."""
    try:
        return lineage.fingerprint(target, written=written)
    except (OSError, DslcError) as exc:
        _log.warning("saved %s but could not fingerprint it: %s", target.label, exc)
        return None


def _update_dvc_pointer(root: Path, dest: Path) -> bool:
    """A file that ``dvc add`` put under DVC (a ``<file>.dvc`` beside it) is added again,
    so the pointer names what was just saved (True then). Stage outputs have no such
    pointer: dvc repro records them in dvc.lock when the stage ends."""
    from . import _dvc as dvc

    if not dest.with_name(dest.name + ".dvc").is_file() or not dvc.enabled(root):
        return False
    dvc.track(root, dest)
    return True


def _record(
    target: Target, written: os.stat_result | None = None, *, clear: bool = False
) -> str | None:
    """Store the fingerprint of what is now on disk in the catalog entry (None: ``clear``).

    Hashed inside the catalog lock: when two processes save the same dataset, the last to
    record hashes the file the other's rename may have replaced, so the catalog always
    ends with the fingerprint of the file actually on disk.
    """
    assert target.entry is not None
    root = target.root
    cat_file = config.paths(root).catalog
    cache = catalog.cache_path(root)
    with catalog.locked(state_dir(root) / "catalog.lock"):
        fp = None if clear else _saved_fingerprint(target, written)
        if fp is None and not clear:
            return None
        current = catalog.read(cat_file, cache)  # re-read: others may have changed it
        entry = current.get(target.entry.name)
        if entry is not None and entry.sql is None and entry.fingerprint != fp:
            from dataclasses import replace

            current[entry.name] = replace(entry, fingerprint=fp)
            catalog.write(cat_file, current, cache)
    return fp


def snapshot(name: str) -> catalog.Snapshot:
    """Run SQL source ``name`` once and freeze the result as a read-only Parquet file.

    It lands in ``data/raw/snapshots/<name>/<UTC time>.parquet`` (never over another
    snapshot) and is recorded under the entry's ``snapshots``: its fingerprint, the query,
    the connection variable's name, the UTC time the query started. In a DVC project it is
    put under DVC like any raw data. Load the newest with ``data.load("<name>@latest")``,
    a given one with ``"<name>@<id>"``.

    Raises:
        SqlError: ``name`` is not a SQL source, or reading it failed (nothing is written).
    """
    catalog.check_name(name)
    target = locate.resolve(name)
    entry, root = target.entry, target.root
    if not target.is_sql or entry is None or entry.sql is None:
        raise SqlError(
            f"dataset {name!r} is not a SQL source; snapshots freeze entries with "
            "'connection' and 'query' (or 'table')"
        )
    taken = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    result = sql.read(entry.sql, name, root, target.options)
    frame = result.frame()
    _publish(target, "input", query=result.query)
    cat_file, cache = config.paths(root).catalog, catalog.cache_path(root)
    with catalog.locked(state_dir(root) / "catalog.lock"):
        entry = catalog.get(cat_file, name, cache)
        if entry is None or entry.sql is None:
            raise SqlError(f"dataset {name!r} left the catalog while it was read; nothing saved")
        folder = config.paths(root).raw / "snapshots" / name
        ids = {s.id for s in entry.snapshots}
        dest = sql.write_snapshot(frame, folder, taken.strftime("%Y%m%dT%H%M%SZ"), ids)
        try:
            snap = catalog.Snapshot(
                id=dest.stem,
                location=dest.relative_to(root / "data").as_posix(),
                fingerprint=fingerprint_path(dest, _cache_file(root), written=dest.stat()),
                taken=taken.isoformat().replace("+00:00", "Z"),
                connection=entry.sql.connection,
                query=result.query,
                params=result.params,
                rows=len(frame),
            )
            entries = catalog.read(cat_file, cache)
            entries[name] = replace(entry, snapshots=(*entry.snapshots, snap))
            catalog.write(cat_file, entries, cache)
        except BaseException:
            dest.unlink(missing_ok=True)  # a snapshot the catalog does not know is litter
            raise
    _publish(locate.resolve(f"{name}@{snap.id}", root=root), "output", snap.fingerprint)
    from . import _dvc as dvc

    if dvc.enabled(root):  # raw data like any other: versioned, pushed and pulled with DVC
        dvc.track(root, dest)
        dest.chmod(0o444)  # dvc add puts back a writable copy from its cache
    return snap
