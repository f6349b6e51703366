"""Load and save datasets by catalog name, path or URL (helpers/README.md, Data)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from . import _atomic as atomic
from . import _catalog as catalog
from . import _dvc as dvc
from . import _events as events
from . import _formats as formats
from . import _lineage as lineage
from . import _locate as locate
from . import _sql as sql
from . import config
from ._fingerprint import check_regular, fingerprint_path
from ._locate import Target
from .errors import DatasetNotFoundError, DslcError, LocationError, RawDataWriteError, SqlError

__all__ = ["entries", "fingerprint", "load", "path", "require_stage", "save", "snapshot"]

_log = logging.getLogger(__name__)
NameOrPath = str | os.PathLike[str]
Role = Literal["input", "output"]


def path(name_or_path: NameOrPath) -> Path:
    """Where a dataset lives on this machine: an absolute Path (it need not exist yet).

    Raises LocationError for a dataset with no local path (a remote URL, a SQL source).
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
    return catalog.read(config.paths(config.project_root()).catalog)


def fingerprint(path_or_name: NameOrPath) -> str:
    """Full-content fingerprint ``"sha256:<hex>"`` of a dataset file or folder.

    Cached on size, mtime, ctime and inode, so an unchanged file costs a stat.
    """
    return _fingerprint(locate.resolve(path_or_name, need_format=False))


def _fingerprint(target: Target) -> str:
    """The first read of a DVC stage's output since ``save`` also records its fingerprint
    in the catalog (see :func:`save`)."""
    try:
        fp = lineage.fingerprint(target)
    except FileNotFoundError:
        raise _missing(target) from None
    if target.entry is not None and target.entry.fingerprint is None and _dvc_output(target):
        _record(target)
    return fp


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
            fp = _fingerprint(target)
        except (OSError, DslcError) as exc:
            _log.warning("could not fingerprint %s: %s", target.location, exc)
    if role == "input" and fp and (recorded := target.recorded) and fp != recorded:
        # Reading drifted data is allowed (it may be intended) but should not be silent.
        _log.warning(
            "dataset %r changed since it was recorded (%s, now %s); run `dslc data verify`",
            target.name,
            recorded[:19],
            fp[:19],
        )
    events.publish(events.DatasetUse(target.name, target.location, fp, target.format, role, query))


def _open_url(target: Target, mode: str) -> Any:
    """An fsspec file for a remote target (compression from its suffix), for ``with``."""
    import fsspec

    return fsspec.open(target.url, mode, compression="infer", **(target.storage_options or {}))


def load(name_or_path: NameOrPath, *, format: str | None = None, **options: Any) -> Any:
    """Read a dataset: ``"iris"`` (catalog), ``"orders@latest"`` (a snapshot of a SQL
    source), ``"raw/iris.csv"`` (relative to ``data/``), or ``"s3://b/x.parquet"``.

    ``format`` overrides the catalog's or the suffix's; ``options`` go to the reader and
    override the entry's ``load_options`` (for a SQL source, ``pandas.read_sql``'s, where
    ``chunksize=N`` returns an iterator of DataFrames of N rows).
    """
    target = locate.resolve(name_or_path, fmt=format, purpose="load", options=options)
    if target.is_sql:
        assert target.entry is not None and target.entry.sql is not None
        result = sql.read(target.entry.sql, target.entry.name, target.root, target.options)
        frames = result.frames if result.chunked else result.frame()
        _publish(target, "input", query=result.query)
        return frames
    fmt = formats.FORMATS[target.format]
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
    local = target.local
    if target.snapshot or (local and locate.is_raw(local, target.root, "snapshots")):
        raise RawDataWriteError(
            f"refusing to write {target.label}: snapshots are immutable, "
            "even with force=True; save under another name (data/interim or data/processed)"
        )
    if target.is_sql:
        raise RawDataWriteError(
            f"refusing to write {target.name!r}: it is a SQL source, and dslc never writes "
            "to databases; save the result under another name"
        )
    if not force and local and locate.is_raw(local, target.root):
        raise RawDataWriteError(
            f"refusing to write {local}: data/raw is immutable; save under data/interim "
            "or data/processed, or pass force=True"
        )


def save(
    obj: Any,
    name_or_path: NameOrPath,
    *,
    force: bool = False,
    format: str | None = None,
    **options: Any,
) -> Path | None:
    """Write ``obj`` atomically; return the Path written (None for a remote URL).

    A DataFrame for csv, parquet, json, feather and excel; any object for pickle and
    joblib. ``force=True`` allows writing under ``data/raw``; ``format`` and ``options``
    as for :func:`load` (``save_options``). Saving through a catalog name records the new
    fingerprint in the catalog. Nothing is written if the format, object or path is wrong.
    """
    target = locate.resolve(name_or_path, fmt=format, purpose="save", options=options)
    _refuse_write(target, force)
    fmt = formats.FORMATS[target.format]
    obj = fmt.savable(obj)
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
        with atomic.atomic_path(dest) as tmp:
            fmt.save(obj, str(tmp), **opts)
            inode = tmp.stat().st_ino
        with contextlib.suppress(OSError):  # the file renamed to dest, if it is still there
            st = dest.stat()
            written = st if st.st_ino == inode and stat.S_ISREG(st.st_mode) else None
        # A file `dvc add` tracks is added again, so its pointer names what was saved
        # (stage outputs have no pointer: dvc repro records them when the stage ends).
        if dest.with_name(dest.name + ".dvc").is_file() and dvc.enabled(target.root):
            dvc.track(target.root, dest)
            written = None  # dvc add put a copy of its cache object in its place
    # DVC commits a stage's output when the stage ends and puts a copy back (a new stamp),
    # so a fingerprint taken now would be read again at the next load: its recorded one is
    # cleared instead, and the first later read records it.
    fp = None if target.entry is None else _record(target, written, clear=_dvc_output(target))
    _publish(target, "output", fp)
    return target.local


def _dvc_output(target: Target) -> bool:
    local = target.local
    return local is not None and dvc.enabled(target.root) and dvc.stage_output(target.root, local)


def _record(
    target: Target, written: os.stat_result | None = None, *, clear: bool = False
) -> str | None:
    """Store the fingerprint of what is now on disk in the catalog entry (None: ``clear``).

    Hashed inside the catalog lock: when two processes save the same dataset, the last to
    record hashes the file the other's rename may have replaced, so the catalog always
    ends with the fingerprint of the file actually on disk.
    """
    assert target.entry is not None
    with catalog.editing(target.root) as current:
        try:
            fp = None if clear else lineage.fingerprint(target, written=written)
        except (OSError, DslcError) as exc:
            _log.warning("saved %s but could not fingerprint it: %s", target.label, exc)
            return None
        if (entry := current.get(target.entry.name)) is not None and entry.sql is None:
            current[entry.name] = replace(entry, fingerprint=fp)
    return fp


def snapshot(name: str) -> catalog.Snapshot:
    """Run SQL source ``name`` once and freeze the result as a read-only Parquet file in
    ``data/raw/snapshots/<name>/``, recorded under the entry's ``snapshots``."""
    catalog.check_name(name)
    target = locate.resolve(name)
    entry, root = target.entry, target.root
    if not target.is_sql or entry is None or entry.sql is None:
        raise SqlError(
            f"dataset {name!r} is not a SQL source; snapshots freeze entries with "
            "'connection' and 'query' (or 'table')"
        )
    taken = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result = sql.read(entry.sql, name, root, target.options)
    frame = result.frame()
    _publish(target, "input", query=result.query)
    dest: Path | None = None
    try:
        with catalog.editing(root) as current:
            if (entry := current.get(name)) is None or entry.sql is None:
                raise SqlError(
                    f"dataset {name!r} left the catalog while it was read; nothing saved"
                )
            folder = config.paths(root).raw / "snapshots" / name
            ids = {s.id for s in entry.snapshots}
            dest = sql.write_snapshot(frame, folder, taken.strftime("%Y%m%dT%H%M%SZ"), ids)
            snap = catalog.Snapshot(
                id=dest.stem,
                location=dest.relative_to(root / "data").as_posix(),
                fingerprint=fingerprint_path(dest, lineage.cache_file(root), written=dest.stat()),
                taken=taken.isoformat().replace("+00:00", "Z"),
                connection=entry.sql.connection,
                query=result.query,
                params=result.params,
                rows=len(frame),
            )
            current[name] = replace(entry, snapshots=(*entry.snapshots, snap))
    except BaseException:
        if dest is not None:
            dest.unlink(missing_ok=True)  # a snapshot the catalog does not know is litter
        raise
    _publish(locate.resolve(f"{name}@{snap.id}", root=root), "output", snap.fingerprint)
    if dvc.enabled(root):  # raw data like any other: versioned, pushed and pulled with DVC
        dvc.track(root, dest)
    return snap


def require_stage(stage: str) -> None:
    """Stop (exit 1) a script that writes DVC stage ``stage``'s outputs unless DVC runs it.

    Run directly in a DVC project, it would leave outputs that dvc.lock does not record.
    DVC sets ``DVC_STAGE`` for the commands of its stages; projects without DVC pass.
    """
    if dvc.enabled(config.project_root()) and not os.environ.get("DVC_STAGE"):
        raise SystemExit(
            f"error: {stage} writes outputs that dvc.lock records, so it runs as DVC's "
            f"stage: `make {stage}` (dvc repro {stage}), not directly"
        )
