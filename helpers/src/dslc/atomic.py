"""Atomic file replacement: readers see the old file or the new one, never half of one.

The new content goes to a temporary file in the target's folder (same filesystem, so the
rename is atomic), is flushed and fsynced, then ``os.replace``-d over the target. If the
process dies midway, the target is untouched; ordinary exceptions remove the temp file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = ".dslc-tmp-"


def _fsync_file(path: Path) -> None:
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


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target`` atomically.

    The temporary name ends with the target's full name so writers that infer format or
    compression from the suffix (``.csv.gz``, ``.xlsx``) behave as for the target. It is
    not pre-created, so the file gets ordinary permissions (umask), not mkstemp's 0600.
    """
    target = Path(target)
    tmp = target.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{target.name}")
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def write_text(target: Path, text: str) -> None:
    """Atomically replace ``target`` with ``text`` (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
