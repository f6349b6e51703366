"""Turn a dataset reference, path or URL into a :class:`Target`. Guards are by filesystem:
a URL whose fsspec filesystem is the local disk must name a file inside the project, on the
normalised path (not the resolved one: a ``data/raw`` symlinked to a big disk works)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import _catalog as catalog
from . import _formats as formats
from . import config
from ._catalog import DatasetEntry, Snapshot
from ._secrets import scrub_urls
from .errors import DatasetNotFoundError, LocationError, UnsafePathError

# fsspec's own test for "has a protocol": a scheme followed by :// or by :: (a chain).
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*(://|::)")
# fsspec filesystems that read local files dslc cannot see from the URL: references to
# arbitrary files, git and DVC repositories, routing and worker filesystems.
_OPAQUE = frozenset({"reference", "git", "dvc", "generic", "dask", "asyncwrapper", "async_wrapper"})


@dataclass(frozen=True)
class Target:
    """A resolved dataset: where it is, its format, options, and its catalog entry if any."""

    root: Path
    location: str  # absolute local path, URL (credentials removed), or sql://VARIABLE
    format: str
    entry: DatasetEntry | None = None
    local: Path | None = None  # set when the dataset is a local file or folder
    options: dict[str, Any] = field(default_factory=dict)  # reader or writer options
    storage_options: dict[str, Any] | None = None  # fsspec's, for a URL
    snapshot: Snapshot | None = None
    url: str | None = None  # the URL to give fsspec (may hold credentials; never print it)

    @property
    def name(self) -> str | None:
        """Catalog reference (``orders@<id>`` for a snapshot), None for a path."""
        if self.entry is None:
            return None
        return f"{self.entry.name}@{self.snapshot.id}" if self.snapshot else self.entry.name

    @property
    def label(self) -> str:
        return repr(self.name) if self.entry else self.location

    @property
    def is_sql(self) -> bool:
        """True for a live SQL source (not one of its snapshots)."""
        return self.entry is not None and self.entry.sql is not None and self.snapshot is None

    @property
    def recorded(self) -> str | None:
        if self.snapshot is not None:
            return self.snapshot.fingerprint
        return self.entry.fingerprint if self.entry else None


def is_url(text: str | os.PathLike[str]) -> bool:
    """True for ``scheme://...`` and chained ``scheme::...`` strings (``file://`` included)."""
    return isinstance(text, str) and bool(_URL_RE.match(text))


def is_name(text: str | os.PathLike[str]) -> bool:
    """True if ``text`` is a catalog reference: a name, optionally ``@latest`` or ``@<id>``."""
    return isinstance(text, str) and "/" not in text and "\\" not in text and "." not in text


def check_text(text: str) -> None:
    if "\x00" in text:
        raise LocationError(
            f"{scrub_urls(text)!r} contains a NUL character, which no file name can hold; "
            "fix the path"
        )


def _inside(path: str | os.PathLike[str], root: Path, shown: str) -> Path:
    normal = Path(os.path.normpath(path))
    if not normal.is_absolute() or not normal.is_relative_to(root):
        raise UnsafePathError(
            f"{shown!r} points outside the project ({normal}); keep data inside {root}"
        )
    return normal


def _where(text: str, storage_options: Mapping[str, Any] | None, root: Path) -> Path | None:
    """The local file that a path (relative to ``data/``) or a URL names, inside ``root``, or
    None for a remote store. Chains and filesystems that wrap another one are refused."""
    if not is_url(text):
        p = Path(text).expanduser()
        return _inside(p if p.is_absolute() else root / "data" / p, root, text)
    import fsspec
    from fsspec.archive import AbstractArchiveFileSystem
    from fsspec.core import split_protocol, strip_protocol
    from fsspec.implementations.cached import CachingFileSystem
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    shown = scrub_urls(text)
    options = set(storage_options or ()) & {"protocol", "fs", "fo", "target_protocol"}
    chained = "::" in re.sub(r"\[[0-9A-Fa-f:.]*\]", "", text)  # not an IPv6 host's colons
    if chained or options:
        what = "a chained URL (a::b)" if chained else f"storage option {min(options)!r}"
        raise LocationError(
            f"cannot use {shown!r}: {what} reads through another filesystem, which dslc "
            "does not follow; give the data's own URL, or copy it under data/"
        )
    protocol = split_protocol(text)[0] or "file"
    try:
        cls = fsspec.get_filesystem_class(protocol)
    except ImportError as exc:  # a driver such as s3fs is missing
        raise LocationError(f"cannot use {shown!r}: {exc}") from None
    except ValueError as exc:
        raise LocationError(
            f"cannot use {shown!r}: {exc}; check the protocol (known: file, memory, s3, "
            "gcs, http, ...)"
        ) from None
    if issubclass(cls, LocalFileSystem):  # as LocalFileSystem opens it: absolute, no protocol
        return _inside(strip_protocol(f"file://{strip_protocol(text)}"), root, shown)
    wrappers = (CachingFileSystem, DirFileSystem, AbstractArchiveFileSystem)
    if protocol in _OPAQUE or issubclass(cls, wrappers):
        raise LocationError(
            f"dslc cannot check where {protocol!r} URLs read from, so it does not open "
            f"them ({shown!r}); copy the data under data/ or use a plain URL"
        )
    return None


def _entry(ref: str, root: Path) -> tuple[DatasetEntry, Snapshot | None]:
    name, at, snap = ref.partition("@")  # "orders@latest", or "iris" (no snapshot)
    cat_file = config.paths(root).catalog
    entries = catalog.read(cat_file)
    if (entry := entries.get(name)) is None:
        known = list(entries)
        shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if known[10:] else "")
        raise DatasetNotFoundError(
            f"dataset {name!r} is not in {cat_file} (known: {shown or 'none'}); add it "
            f"with `dslc data add {name} PATH`, or pass a path such as 'raw/file.csv'"
        )
    if not at:
        return entry, None
    if entry.sql is None:
        raise DatasetNotFoundError(
            f"dataset {name!r} is a file dataset: only SQL sources have snapshots "
            f"({ref!r}); load it as {name!r}"
        )
    return entry, entry.snapshot(snap)


def resolve(
    name_or_path: str | os.PathLike[str],
    fmt: str | None = None,
    root: Path | None = None,
    *,
    need_format: bool = True,
    purpose: Literal["load", "save"] = "load",
    options: Mapping[str, Any] | None = None,
) -> Target:
    """Resolve a catalog reference, a path relative to ``data/``, or a URL; ``options``
    override the entry's ``load_options`` or ``save_options`` (by ``purpose``), and
    ``need_format=False`` (for callers that never read it) leaves an unset format empty."""
    r = config.project_root() if root is None else root
    entry, snap = _entry(str(name_or_path), r) if is_name(name_or_path) else (None, None)
    opts = dict(options or {})
    if entry is not None and snap is None:
        opts = {**(entry.save_options if purpose == "save" else entry.load_options), **opts}
        if entry.sql is not None:  # a SQL source has no save_options: data.save refuses it
            return Target(r, entry.location, "sql", entry, options=opts)
    text = os.fspath(snap.location if snap else entry.location if entry else name_or_path)
    check_text(text)
    storage = opts.pop("storage_options", None)
    local = _where(text, storage, r)
    location = str(local) if local is not None else scrub_urls(text)
    if chosen := fmt or ("parquet" if snap else entry.format if entry else None):
        format_name = formats.normalize(chosen)
    else:
        format_name = formats.infer(location) if need_format else ""
    url = text if local is None else None
    return Target(r, location, format_name, entry, local, opts, storage, snap, url)


def is_raw(path: Path, root: Path, *sub: str) -> bool:
    """True if ``path`` is under ``data/raw[/<sub>]``, lexically or once links are resolved."""
    raw = root.joinpath("data", "raw", *sub)
    try:
        return path.is_relative_to(raw) or path.resolve().is_relative_to(raw.resolve())
    except OSError:
        return False
