"""``dslc data add|verify``: record datasets and detect drift (statuses: helpers/README.md)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from . import _catalog as catalog
from . import _dvc as dvc
from . import _formats as formats
from . import _locate as locate
from . import config
from ._catalog import DatasetEntry
from ._fingerprint import Progress, fingerprint_path, fingerprint_url
from .errors import CatalogError, DatasetNotFoundError, DslcError

Status = Literal["ok", "changed", "lost", "not_built", "unrecorded", "live", "error"]
FAILING: frozenset[Status] = frozenset({"changed", "lost", "error"})


@dataclass(frozen=True)
class Check:
    """Outcome of verifying one catalog dataset (or one snapshot, ``name@id``)."""

    name: str
    status: Status
    location: str
    recorded: str | None = None
    current: str | None = None
    detail: str = ""


def _locate_for_add(path: str, root: Path) -> tuple[str, locate.Target]:
    """(location to store, resolved target). Shell paths first, then data/-relative."""
    where = path  # a URL as it is (file:// and local:// name a local file)
    if not locate.is_url(path):
        locate.check_text(path)
        p = Path(path).expanduser()
        if not p.is_absolute() and not (Path.cwd() / p).exists():
            p = root / "data" / p  # `dslc data add iris raw/iris.csv` from anywhere
        where = str(p.absolute())
    target = locate.resolve(where, root=root, need_format=False)
    if (local := target.local) is None:
        return target.url or target.location, target
    if not local.exists():
        raise DatasetNotFoundError(f"{path!r} does not exist ({local}); give an existing path")
    return Path(os.path.relpath(local, root / "data")).as_posix(), target


def add(
    name: str,
    path: str,
    *,
    parents: Sequence[str] = (),
    description: str | None = None,
    format: str | None = None,
    replace_existing: bool = False,
    on_hash: Callable[[str], None],
    on_bytes: Progress | None = None,
) -> DatasetEntry:
    """Record a dataset and its fingerprint in the catalog (``dslc data add``); ``path`` is
    a shell path, else relative to ``data/``, or a URL; ``on_hash(location)`` starts hashing."""
    r = config.project_root()
    catalog.check_name(name)
    location, target = _locate_for_add(path, r)
    fmt = formats.normalize(format) if format else None
    if fmt is None and not (target.local is not None and target.local.is_dir()):
        formats.infer(location)  # fail now, not at the first load
    cat_file = config.paths(r).catalog
    _check_parents(name, parents, cat_file, catalog.read(cat_file), replace_existing)
    on_hash(location)
    if target.local is not None and dvc.enabled(r) and target.local.is_relative_to(r / "data"):
        dvc.track(r, target.local)  # first: DVC puts a copy back, which dslc then reads
    fp = fingerprint(target, on_bytes)
    with catalog.editing(r) as entries:  # checked again: it may have changed while hashing
        _check_parents(name, parents, cat_file, entries, replace_existing)
        base = entries.get(name) or DatasetEntry(name=name, location=location)
        entries[name] = entry = replace(
            base,
            location=location,
            format=fmt or (base.format if base.location == location else None),
            description=description if description is not None else base.description,
            parents=tuple(parents) if parents else base.parents,
            fingerprint=fp,
        )
    return entry


def _check_parents(
    name: str, parents: Sequence[str], file: Path, entries: dict[str, DatasetEntry], replacing: bool
) -> None:
    """Refuse a name already taken (a SQL source's even with --replace: its connection,
    query and snapshots would be lost), and parents that are missing or form a cycle."""
    if (old := entries.get(name)) is not None and (old.sql is not None or not replacing):
        raise CatalogError(
            f"dataset {name!r} is already in {file}; pass --replace to update a file "
            "dataset (a SQL source's query and snapshots are never replaced)"
        )
    new = DatasetEntry(name=name, location="", parents=tuple(parents))
    catalog.check_graph(file, {**entries, name: new})


def fingerprint(
    target: locate.Target,
    on_bytes: Progress | None = None,
    *,
    trust_cache: bool = True,
    written: os.stat_result | None = None,
) -> str:
    """Full-content fingerprint of a resolved dataset (FileNotFoundError if it is not there)."""
    if target.is_sql:
        raise DslcError(
            f"dataset {target.name!r} is a live SQL source and has no fingerprint; freeze it "
            f"with `dslc data snapshot {target.name}` and use '{target.name}@latest'"
        )
    if target.local is None:
        return fingerprint_url(target.url or target.location, target.storage_options, on_bytes)
    if not target.local.exists() and not target.local.is_symlink():
        raise FileNotFoundError(target.local)
    cache = cache_file(target.root)
    return fingerprint_path(target.local, cache, on_bytes, trust_cache=trust_cache, written=written)


def cache_file(root: Path) -> Path:
    """dslc's fingerprint cache of the project at ``root`` (its own: DVC's is never used)."""
    return config.state_dir(root) / "fingerprints.json"


def verify(
    on_start: Callable[[int, int, str, str], None],
    on_bytes: Progress | None = None,
    *,
    full: bool = True,
) -> Iterator[Check]:
    """A :class:`Check` of every catalog dataset and snapshot; ``on_start(i, n, reference,
    location)`` before each; ``full=False`` trusts the fingerprint cache (``--fast``)."""
    r = config.project_root()
    dvc.protect_snapshots(r)  # one left writable by a kill during `dvc add` is mended
    entries = catalog.read(config.paths(r).catalog)
    refs = [  # each entry, then its snapshots
        (f"{e.name}@{s.id}" if s else e.name, e, s.location if s else e.location)
        for e in entries.values()
        for s in (None, *e.snapshots)
    ]
    for i, (ref, entry, shown) in enumerate(refs, 1):
        on_start(i, len(refs), ref, shown)
        yield _check(ref, entry, r, on_bytes, not full)


def _check(
    ref: str, entry: DatasetEntry, root: Path, on_bytes: Progress | None, trust_cache: bool
) -> Check:
    if entry.sql is not None and "@" not in ref:
        return Check(ref, "live", entry.location)
    try:
        target = locate.resolve(ref, root=root, need_format=False)
    except DslcError as exc:
        return Check(ref, "error", entry.location, entry.fingerprint, detail=str(exc))
    recorded = target.recorded
    try:
        now = fingerprint(target, on_bytes, trust_cache=trust_cache)
    except FileNotFoundError:
        status: Status = "lost" if recorded else "not_built"
        return Check(ref, status, target.location, recorded)
    except (OSError, DslcError) as exc:
        detail = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) else str(exc)
        return Check(ref, "error", target.location, recorded, detail=detail)
    if recorded is None:
        return Check(ref, "unrecorded", target.location, None, now)
    return Check(ref, "ok" if now == recorded else "changed", target.location, recorded, now)
