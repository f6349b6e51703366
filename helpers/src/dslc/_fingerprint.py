"""Full-content fingerprints (``"sha256:<hex>"``) and dslc's own stat-keyed cache of them;
"racy" files, modified in the tick they were hashed, are not cached (as git does)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import _atomic as atomic
from .errors import SpecialFileError

ALGO = "sha256"
CHUNK = 1 << 20  # 1 MiB: big enough to amortise syscalls, small enough to stay in L2

_log = logging.getLogger(__name__)

Progress = Callable[[int], None]  # called with the number of bytes just hashed


def _hash_fileobj(fh: Any, on_bytes: Progress | None, algo: str = ALGO) -> str:
    h = hashlib.new(algo)
    while data := fh.read(CHUNK):
        h.update(data)
        if on_bytes is not None:
            on_bytes(len(data))
    return h.hexdigest()


def check_regular(path: Path, st: os.stat_result) -> None:
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a socket or device"
        raise SpecialFileError(
            f"{path} is {kind}, not a data file; datasets hold regular files "
            "only: move it out of the data folder"
        )


def hash_file(path: Path, on_bytes: Progress | None = None, algo: str = ALGO) -> str:
    """Hex digest of a regular file's content, uncached."""
    with atomic.open_regular(path) as fh:
        return _hash_fileobj(fh, on_bytes, algo)


class FingerprintCache:
    """Persistent ``key -> (stamp, fingerprint)`` map in a JSON file."""

    def __init__(self, file: Path | None, algo: str = ALGO, *, trust: bool = True) -> None:
        self.file = file
        self.header = f"{algo}-v3"  # the file's one key; a new layout gets a new version
        self._dirty: dict[str, list[Any]] = {}
        self._entries = self._read() if trust else {}  # untrusted: all hashed again, then kept

    def _read(self) -> dict[str, list[Any]]:
        if self.file is None:
            return {}
        try:
            entries = json.loads(atomic.read_regular(self.file).decode("utf-8"))[self.header]
        except (OSError, ValueError, TypeError, KeyError):
            return {}  # none, corrupt or another version's: just rehash
        return entries if isinstance(entries, dict) else {}

    def get(self, key: str, stamp: list[Any]) -> str | None:
        if isinstance(hit := self._entries.get(key), list) and len(hit) == 2 and hit[0] == stamp:
            return str(hit[1])
        return None

    def put(self, key: str, stamp: list[Any], fp: str) -> None:
        self._entries[key] = self._dirty[key] = [stamp, fp]

    def flush(self) -> None:
        # Merged into the file as it is now: other processes may have written meanwhile.
        if not self._dirty or self.file is None:
            return
        merged = {**self._read(), **self._dirty}
        # Forget files that no longer exist, so the cache does not grow forever.
        merged = {k: v for k, v in merged.items() if os.path.exists(k)}
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({self.header: merged}, separators=(",", ":"))
            atomic.write_text(self.file, text)
        except OSError as exc:  # a read-only project still gets fingerprints
            _log.warning("could not write fingerprint cache %s: %s", self.file, exc)


def _file_fp(
    path: Path, cache: FingerprintCache, on_bytes: Progress | None, written: os.stat_result | None
) -> str:
    st = path.stat()
    check_regular(path, st)
    if (hit := cache.get(str(path), atomic.stamp_of(st))) is not None:
        return hit
    whole = written is not None and atomic.stamp_of(written) == atomic.stamp_of(st)
    wait_ns = atomic.FINE_RACY_NS - (time.time_ns() - st.st_mtime_ns)
    if not whole and 0 < wait_ns <= atomic.FINE_RACY_NS and st.st_mtime_ns % 1_000_000_000:
        time.sleep(wait_ns / 1e9)  # written just now by another program: let it settle
    started = time.time_ns()
    fp = f"{ALGO}:{hash_file(path, on_bytes)}"
    after = path.stat()
    if atomic.stamp_of(after) != atomic.stamp_of(st):
        _log.warning("%s changed while it was being fingerprinted; not caching", path)
    elif whole or not atomic.is_racy(after.st_mtime_ns, started):
        cache.put(str(path), atomic.stamp_of(after), fp)
    return fp


def _dir_fp(folder: Path, cache: FingerprintCache, on_bytes: Progress | None) -> str:
    # Hash of "relative/posix/name NUL file-digest LF" for every file in sorted order:
    # renames and moves change it, and each file still benefits from the cache.
    files = sorted(
        (Path(dirpath, name).relative_to(folder).as_posix(), Path(dirpath, name))
        for dirpath, _, names in os.walk(folder)
        for name in names
        if not name.startswith(atomic.TMP_PREFIX)  # a write in progress, or a dead writer's
    )
    h = hashlib.new(ALGO)
    for rel, full in files:
        try:
            digest = _file_fp(full, cache, on_bytes, None).partition(":")[2]
        except FileNotFoundError:
            if full.is_symlink():
                raise SpecialFileError(
                    f"{full} is a broken symbolic link; fix or remove it"
                ) from None
            raise
        h.update(f"{rel}\0{digest}\n".encode())
    return f"{ALGO}:{h.hexdigest()}"


def fingerprint_path(
    path: Path,
    cache_file: Path | None = None,
    on_bytes: Progress | None = None,
    *,
    trust_cache: bool = True,
    written: os.stat_result | None = None,
) -> str:
    """Fingerprint of a local file or folder; ``written``: the stat of a file dslc has just
    renamed into place whole, cached although its timestamps are fresh."""
    p = Path(path).absolute()
    cache = FingerprintCache(cache_file, trust=trust_cache)
    try:
        if stat.S_ISDIR(p.stat().st_mode):
            return _dir_fp(p, cache, on_bytes)
        return _file_fp(p, cache, on_bytes, written)  # checks that it is a regular file
    finally:
        cache.flush()


def fingerprint_url(
    url: str, storage_options: dict[str, Any] | None = None, on_bytes: Progress | None = None
) -> str:
    """Fingerprint of a remote fsspec URL (checked by ``_locate`` first), read every time."""
    import fsspec

    with fsspec.open(url, "rb", **(storage_options or {})) as fh:
        return f"{ALGO}:{_hash_fileobj(fh, on_bytes)}"
