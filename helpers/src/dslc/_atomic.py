"""Atomic file replacement: readers see the old file or the new one, never half of one.

The new content goes to a temporary file in the target's folder (same filesystem, so the
rename is atomic), is flushed and fsynced, then ``os.replace``-d over the target. If the
process dies midway, the target is untouched; ordinary exceptions remove the temp file.

A writer killed with ``kill -9`` cannot remove its temporary file, so each name carries
the writer's host and process id (``.dslc-tmp-<host>-<pid>-<random>-<target name>``) and
every write first removes the temporary files of dead writers in its folder: same host
and no such process, or another host and untouched for a day. A live writer's file is
never removed (its process exists), whatever its age.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = ".dslc-tmp-"
_TMP_RE = re.compile(rf"{re.escape(TMP_PREFIX)}([0-9a-f]{{8}})-(\d+)-[0-9a-f]{{12}}-")
OTHER_HOST_STALE_S = 24 * 3600  # a writer elsewhere: we cannot see its process
_NAME_MAX = 255  # bytes in a file name on the usual filesystems
_log = logging.getLogger(__name__)
_host_tag: str | None = None


def host_tag() -> str:
    """8 hex digits naming this machine in temporary file names."""
    global _host_tag
    if _host_tag is None:
        _host_tag = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    return _host_tag


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid we wrote: never treat it as dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or we cannot tell: keep it)
    return True


def is_stale(path: Path, now: float | None = None) -> bool:
    """True if ``path`` is a temporary file of a writer that is certainly gone."""
    m = _TMP_RE.match(path.name)
    if m is None:
        return False
    if m.group(1) == host_tag():
        return not _alive(int(m.group(2)))
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except OSError:
        return False
    return age > OTHER_HOST_STALE_S


def clean_stale(folder: Path) -> list[Path]:
    """Remove dead writers' temporary files directly in ``folder``; returns what was removed."""
    removed: list[Path] = []
    try:
        with os.scandir(folder) as it:
            candidates = [Path(e.path) for e in it if e.name.startswith(TMP_PREFIX)]
    except OSError:
        return removed
    for path in candidates:
        if is_stale(path):
            with contextlib.suppress(FileNotFoundError):  # another cleaner was faster
                try:
                    path.unlink()
                except IsADirectoryError:
                    import shutil

                    shutil.rmtree(path)
                removed.append(path)
                _log.info("removed %s, left by an interrupted write", path)
    return removed


def temp_path(target: Path) -> Path:
    """A fresh temporary name beside ``target`` that ends with the target's own name.

    Writers that infer format or compression from the suffix (``.csv.gz``, ``.xlsx``) then
    behave as for the target. A long target name is cut from the left to fit.
    """
    prefix = f"{TMP_PREFIX}{host_tag()}-{os.getpid()}-{secrets.token_hex(6)}-"
    tail = target.name.encode()
    budget = _NAME_MAX - len(prefix)
    if len(tail) > budget:
        tail = tail[-budget:]
    return target.with_name(prefix + tail.decode("utf-8", "ignore"))


def _fsync_file(path: Path) -> None:
    if path.is_dir():
        return  # a partitioned dataset written as a folder: its files are closed already
    fd = os.open(path, os.O_RDWR)  # write access: Windows refuses fsync on read-only fds
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable. Not possible on Windows (no directory fds).
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not support fsync on directories
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            import shutil

            shutil.rmtree(path)
        else:
            path.unlink()


@contextlib.contextmanager
def atomic_path(target: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target`` atomically.

    The temporary file is not pre-created, so it gets ordinary permissions (umask), not
    mkstemp's 0600, and a writer may make it a folder (partitioned Parquet).

    Args:
        target: the file to create or replace.
        overwrite: False never replaces an existing ``target`` (FileExistsError instead),
            decided atomically by the filesystem (a hard link), not by a prior check.
    """
    target = Path(target)
    clean_stale(target.parent)
    tmp = temp_path(target)
    try:
        yield tmp
        _fsync_file(tmp)
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails if target exists, even if it appeared just now
            tmp.unlink()
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(target.parent)


def write_text(target: Path, text: str) -> None:
    """Atomically replace ``target`` with ``text`` (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
