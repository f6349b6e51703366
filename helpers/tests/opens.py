"""Count the reads of given files in this process through a public seam: the ``open``
audit event (PEP 578) that ``open()`` and ``os.open()`` raise.

Audit hooks cannot be removed, so one hook is installed on first use and does nothing
while no ``reads_of`` block is active.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_active: list[tuple[tuple[str, ...], list[tuple[str, int]]]] = []
_installed = False


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not _active:
        return
    path, mode, flags = args
    if not isinstance(path, str | bytes | os.PathLike):
        return  # an already open descriptor
    if isinstance(mode, str) and ("r" not in mode or "+" in mode):
        return
    if mode is None and isinstance(flags, int) and flags & os.O_ACCMODE != os.O_RDONLY:
        return
    full = os.path.abspath(os.fsdecode(path))
    for watched, seen in _active:
        if any(full == w or full.startswith(w + os.sep) for w in watched):
            seen.append((full, time.time_ns()))


@contextlib.contextmanager
def reads_of(*paths: Path) -> Iterator[list[tuple[str, int]]]:
    """``with reads_of(file_or_folder, ...) as reads:`` each read-only open of a watched
    file (or of a file under a watched folder) as ``(path, time_ns)``, in order."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    entry = (tuple(os.path.abspath(p) for p in paths), [])
    _active.append(entry)
    try:
        yield entry[1]
    finally:
        _active.remove(entry)


def watch(request: pytest.FixtureRequest, *paths: Path) -> list[tuple[str, int]]:
    """:func:`reads_of` ``paths`` for the rest of the test."""
    stack = contextlib.ExitStack()
    request.addfinalizer(stack.close)
    return stack.enter_context(reads_of(*paths))
