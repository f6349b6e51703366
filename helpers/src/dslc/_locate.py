"""Turn a dataset reference or path into a concrete location, format and options.

Rules: a URL (``scheme://...`` or a chained ``a::b://...``) is resolved with fsspec; a bare
name (no ``/``, no suffix, optionally ``@latest`` or ``@<snapshot id>``) is a catalog
entry; any other relative path is relative to ``data/``; absolute paths are allowed
inside the project only.

Guards are by filesystem, not by spelling: a URL is split into its fsspec layers exactly
as fsspec splits it, and whatever ends on the local disk (``file://``, ``local://``,
``simplecache::file://``, ``dir::``, the archive file under ``zip://...::``, a cache
folder) must be inside the project, like a plain path. A URL that is only a local file
behind pass-through layers (caches, ``dir::``) is treated as that file, so raw-data
immutability, atomic writes and the fingerprint cache apply to it too. Containment is
checked on the normalised path, not the resolved one, so a ``data/raw`` symlinked to a
big disk keeps working (symlinks the user makes are followed on purpose).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Literal

from . import _catalog as catalog
from . import _formats as formats
from . import config
from ._catalog import DatasetEntry, Snapshot
from .errors import DatasetNotFoundError, LocationError, UnsafePathError

# fsspec's own test for "has a protocol": a scheme followed by :// or by :: (a chain).
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*(://|::)")
# fsspec filesystems that read local files dslc cannot see from the URL: references to
# arbitrary files, git and DVC repositories, routing and worker filesystems.
_OPAQUE = frozenset({"reference", "git", "dvc", "generic", "dask", "asyncwrapper", "async_wrapper"})

Purpose = Literal["load", "save"]


@dataclass(frozen=True)
class Target:
    """A resolved dataset: where it is, its format, options, and its catalog entry if any."""

    root: Path
    location: str  # absolute local path, URL (credentials removed), or sql://VARIABLE
    format: str
    entry: DatasetEntry | None = None
    local: Path | None = None  # set when the dataset is a local file or folder
    touches: tuple[Path, ...] = ()  # local files a URL reads through (an archive)
    options: dict[str, Any] = field(default_factory=dict)  # entry's options, then the call's
    snapshot: Snapshot | None = None
    url: str | None = None  # the URL to give fsspec (may hold credentials; never print it)

    @property
    def name(self) -> str | None:
        """Catalog reference (``orders@20261123T101500Z`` for a snapshot), None for a path."""
        if self.entry is None:
            return None
        return f"{self.entry.name}@{self.snapshot.id}" if self.snapshot else self.entry.name

    @property
    def label(self) -> str:
        """How to refer to it in messages."""
        return repr(self.name) if self.entry else self.location

    @property
    def is_sql(self) -> bool:
        """True for a live SQL source (not one of its snapshots)."""
        return self.entry is not None and self.entry.sql is not None and self.snapshot is None

    @property
    def recorded(self) -> str | None:
        """The fingerprint the catalog holds for it."""
        if self.snapshot is not None:
            return self.snapshot.fingerprint
        return self.entry.fingerprint if self.entry else None


def is_url(text: str | os.PathLike[str]) -> bool:
    """True for ``scheme://...`` and chained ``scheme::...`` strings (``file://`` included)."""
    return isinstance(text, str) and bool(_URL_RE.match(text))


def is_name(text: str | os.PathLike[str]) -> bool:
    """True if ``text`` is a catalog reference: a name, optionally ``@latest`` or ``@<id>``."""
    return isinstance(text, str) and "/" not in text and "\\" not in text and "." not in text


def redact(text: str) -> str:
    """``text`` with the ``user:password@`` part of any URL in it replaced by ``***@``."""
    from ._secrets import scrub_urls

    return scrub_urls(text)


def check_text(text: str) -> None:
    """Raise LocationError if ``text`` holds a NUL character (no file name can)."""
    if "\x00" in text:
        raise LocationError(
            f"{redact(text)!r} contains a NUL character, which no file name can hold; fix the path"
        )


def _inside(path: str | os.PathLike[str], root: Path, shown: str) -> Path:
    normal = Path(os.path.normpath(path))
    if not normal.is_absolute() or not normal.is_relative_to(root):
        raise UnsafePathError(
            f"{shown!r} points outside the project ({normal}); keep data inside {root}"
        )
    return normal


def local_path(text: str | os.PathLike[str], root: Path) -> Path:
    """Absolute, normalised path for ``text`` (relative to ``data/``), inside ``root``."""
    raw = os.fspath(text)
    check_text(raw)
    p = Path(raw).expanduser()
    if not p.is_absolute():
        p = root / "data" / p
    return _inside(p, root, raw)


@dataclass(frozen=True)
class _Where:
    local: Path | None  # the URL is this local file behind pass-through layers
    touches: tuple[Path, ...]  # local files read (or written) through other layers


Layer = tuple[str, Any, dict[str, Any]]  # (path, filesystem class, its options)


def _layers(url: str, storage_options: Mapping[str, Any] | None) -> list[Layer]:
    """fsspec's own split of ``url`` into (path, filesystem class, options), outermost first.

    Options naming an inner filesystem (``target_protocol``/``fo``, or an ``fs`` object)
    become layers too, as fsspec would build them.
    """
    import fsspec
    from fsspec.core import _un_chain  # the parser url_to_fs and open use; no I/O

    try:
        chain = _un_chain(url, dict(storage_options or {}))
    except ImportError as exc:  # a driver such as s3fs is missing
        raise LocationError(f"cannot use {redact(url)!r}: {exc}") from None
    except ValueError as exc:
        raise LocationError(
            f"cannot use {redact(url)!r}: {exc}; check the protocol (known: "
            "file, memory, s3, gcs, http, zip, simplecache, ...)"
        ) from None
    out: list[Layer] = []
    for path, protocol, kwargs in chain:
        if protocol in _OPAQUE:
            raise LocationError(
                f"dslc cannot check where {protocol!r} URLs read from, so it does not open "
                f"them ({redact(url)!r}); copy the data under data/ or use a plain URL"
            )
        kw = dict(kwargs)
        out.append((path, fsspec.get_filesystem_class(protocol), kw))
        inner = kw.get("fs")
        while inner is not None or kw.get("target_protocol"):
            if inner is not None:  # an already built filesystem object
                path = getattr(inner, "path", "")
                kw = {"fs": getattr(inner, "fs", None)}
                out.append((path, type(inner), kw))
            else:
                protocol = kw["target_protocol"]
                if protocol in _OPAQUE:
                    raise LocationError(f"dslc cannot check where {protocol!r} URLs read from")
                path = kw.get("fo") or ""
                kw = dict(kw.get("target_options") or {})
                out.append((path, fsspec.get_filesystem_class(protocol), kw))
            inner = kw.get("fs")
    return out


def _where(url: str, storage_options: Mapping[str, Any] | None, root: Path) -> _Where:
    """Where ``url`` ends on the local disk, with the project-root check applied."""
    from fsspec.archive import AbstractArchiveFileSystem
    from fsspec.implementations.cached import CachingFileSystem
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    layers = _layers(url, storage_options)
    shown = redact(url)
    touches: list[Path] = []
    path = layers[0][0]
    plain = True  # only pass-through layers so far: the data is the innermost file itself
    for i, (_, cls, kw) in enumerate(layers):
        if issubclass(cls, CachingFileSystem):
            for folder in _as_list(kw.get("cache_storage")):
                if folder != "TMP":  # fsspec's private temporary folder
                    touches.append(_inside(_local_form(folder), root, shown))
        if issubclass(cls, LocalFileSystem):
            local = _inside(_local_form(path), root, shown)
            if plain:
                return _Where(local, tuple(touches))
            return _Where(None, (*touches, local))
        if i + 1 == len(layers):
            return _Where(None, tuple(touches))  # ends on a remote or in-memory store
        if issubclass(cls, DirFileSystem):
            base = kw.get("path") or kw.get("fo") or layers[i + 1][0]
            path = f"{base}/{path}" if path else str(base)  # as DirFileSystem._join
        elif issubclass(cls, CachingFileSystem):
            pass  # opens the same path on the filesystem below
        elif issubclass(cls, AbstractArchiveFileSystem):
            plain = False  # reads a member of the archive file below
            path = layers[i + 1][0]
        else:
            raise LocationError(
                f"dslc cannot tell where {cls.__name__} reads {shown!r} from; use a plain "
                "URL or a path under data/"
            )
    return _Where(None, tuple(touches))  # pragma: no cover - the loop always returns


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _local_form(path: str) -> str:
    """A local path the way fsspec's LocalFileSystem opens it (absolute, no protocol)."""
    from fsspec.implementations.local import LocalFileSystem

    check_text(path)
    return str(LocalFileSystem._strip_protocol(path))


def _entry(ref: str, root: Path) -> tuple[DatasetEntry, Snapshot | None]:
    name, snap = catalog.split_ref(ref)
    cat_file = config.paths(root).catalog
    entry = catalog.get(cat_file, name, catalog.cache_path(root))
    if entry is None:
        raise _unknown(name, cat_file, list(catalog.read(cat_file, catalog.cache_path(root))))
    if snap is None:
        return entry, None
    if entry.sql is None:
        raise DatasetNotFoundError(
            f"dataset {name!r} is a file dataset: only SQL sources have snapshots "
            f"({ref!r}); load it as {name!r}"
        )
    return entry, entry.snapshot(snap)


def _unknown(name: str, cat_file: Path, known: list[str]) -> DatasetNotFoundError:
    import difflib

    close = difflib.get_close_matches(name, known, n=3)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
    return DatasetNotFoundError(
        f"dataset {name!r} is not in {cat_file} ({hint}known: {shown or 'none'}); add it with "
        f"`dslc data add {name} PATH`, or pass a path such as 'raw/file.csv'"
    )


def resolve(
    name_or_path: str | os.PathLike[str],
    fmt: str | None = None,
    root: Path | None = None,
    *,
    need_format: bool = True,
    purpose: Purpose = "load",
    options: Mapping[str, Any] | None = None,
) -> Target:
    """Resolve a catalog reference, a path relative to ``data/``, or a URL to a :class:`Target`.

    ``options`` (the call's keyword arguments) override the entry's ``load_options`` or
    ``save_options`` (by ``purpose``); their ``storage_options`` take part in resolving a
    URL. With ``need_format=False`` an unknown suffix gives an empty format instead of an
    error (fingerprints do not care about the format).

    Raises:
        DatasetNotFoundError: a bare name that is not in the catalog.
        UnsafePathError: a location that ends on the local disk outside the project.
        LocationError: an unusable URL (unknown protocol, missing driver, NUL character).
        FormatError: unknown format.
        CatalogError: the catalog is malformed.
    """
    r = config.project_root() if root is None else root
    entry: DatasetEntry | None = None
    snap: Snapshot | None = None
    where: str | os.PathLike[str] = name_or_path
    if is_name(name_or_path):
        entry, snap = _entry(str(name_or_path), r)
        if snap is not None:
            where = snap.location
        elif entry.sql is not None:
            return Target(
                root=r,
                location=entry.location,
                format="sql",
                entry=entry,
                options={**entry.load_options, **(options or {})},
            )
        else:
            where = entry.location
    own = (
        {}
        if entry is None or snap is not None
        else (entry.load_options if purpose == "load" else entry.save_options)
    )
    opts = {**own, **(options or {})}
    text = os.fspath(where)
    check_text(text)
    url: str | None = None
    touches: tuple[Path, ...] = ()
    if is_url(text):
        found = _where(text, opts.get("storage_options"), r)
        local, touches = found.local, found.touches
        if local is None:
            url = text
    else:
        local = local_path(where, r)
    location = str(local) if local is not None else redact(text)
    chosen = fmt or (entry.format if entry and snap is None else None)
    if snap is not None and not chosen:
        chosen = "parquet"
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
        touches=touches,
        options=opts,
        snapshot=snap,
        url=url,
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
