"""Atomic file replacement through a temporary file beside the target, whose name says
which host and process wrote it, so a later write can remove a dead writer's leftovers."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TMP_PREFIX = ".dslc-tmp-"
_TMP_RE = re.compile(rf"{re.escape(TMP_PREFIX)}([0-9a-f]{{8}})-(\d+)-[0-9a-f]{{12}}-")
FINE_RACY_NS = 50_000_000  # ns-resolution filesystems tick every few ms
_COARSE_RACY_NS = 2_000_000_000  # FAT, HFS+, some NFS: 1-2 s timestamps
_NAME_MAX = 255  # bytes in a file name on the usual filesystems
_log = logging.getLogger(__name__)


@functools.cache
def host_tag() -> str:
    """8 hex digits naming this machine in temporary file names."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # pid 0 (never one we wrote) is our process group: alive
    except OSError as exc:  # but for "no such process": someone else's, or unknown (kept)
        return not isinstance(exc, ProcessLookupError)
    return True


def clean_stale(folder: Path) -> None:
    """Remove the temporary files in ``folder`` of writers on this machine that are gone
    (another machine's processes cannot be seen: their files stay)."""
    try:
        with os.scandir(folder) as it:
            found = [(Path(e.path), _TMP_RE.match(e.name)) for e in it]
    except OSError:
        return
    for path, m in found:
        if m is not None and m[1] == host_tag() and not alive(int(m[2])):
            _remove(path)
            _log.info("removed %s, left by an interrupted write", path)


def temp_path(target: Path) -> Path:
    """A fresh temporary name beside ``target`` ending with its name (cut to fit), so
    writers that go by the suffix (``.csv.gz``) behave alike."""
    prefix = f"{TMP_PREFIX}{host_tag()}-{os.getpid()}-{secrets.token_hex(6)}-"
    tail = target.name.encode()[len(prefix) - _NAME_MAX :]  # the last bytes that fit
    return target.with_name(prefix + tail.decode("utf-8", "ignore"))


def stamp_of(st: os.stat_result) -> list[int]:
    """What a cache keyed on a file's stat compares: size, mtime, ctime and inode."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def is_racy(mtime_ns: int, now_ns: int | None = None) -> bool:
    """True when a file was modified so recently that another write could share its mtime."""
    now = time.time_ns() if now_ns is None else now_ns
    coarse = mtime_ns % 1_000_000_000 == 0
    return now - mtime_ns < (_COARSE_RACY_NS if coarse else FINE_RACY_NS)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # already gone (another cleaner), or not ours to remove
        if path.is_dir() and not path.is_symlink():
            import shutil  # rarely needed (a partitioned dataset's folder), and slow to import

            shutil.rmtree(path)
        else:
            path.unlink()


@contextlib.contextmanager
def atomic_path(target: Path, *, overwrite: bool = True, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write (not pre-created: the umask's permissions, or
    ``mode``), which then replaces ``target`` atomically; ``overwrite=False`` raises
    FileExistsError instead, decided by the filesystem (a hard link), not a prior check."""
    clean_stale(target.parent)
    tmp = temp_path(target)
    try:
        yield tmp
        if not tmp.is_dir():  # a partitioned dataset's folder: its files are closed already
            _fsync(tmp, os.O_RDWR)  # write access: Windows refuses fsync on read-only fds
        if mode is not None:
            tmp.chmod(mode)
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails if target exists, even if it appeared just now
            tmp.unlink()
    except BaseException:
        _remove(tmp)
        raise
    # The rename made durable; Windows has no folder fds, some filesystems cannot fsync one.
    with contextlib.suppress(OSError):
        _fsync(target.parent, os.O_RDONLY)


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def open_regular(path: Path) -> BinaryIO:
    """A regular file opened for reading, else an OSError naming what it is (checked on the
    descriptor opened non-blocking: a plain ``open`` of a FIFO waits for a writer)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else None
        raise OSError(f"{path} is {kind or 'a socket or device'}, not a regular file")
    if hasattr(os, "set_blocking"):  # not on Windows before Python 3.12
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb", buffering=0)


def read_regular(path: Path) -> bytes:
    with open_regular(path) as fh:
        return fh.read()
