"""DVC's md5 beside dslc's fingerprint, in a project under DVC: each file is read once for
both, and neither tool hashes what the other already has.

- When dslc fingerprints a file it computes DVC's md5 (the plain md5 of the content) in the
  same read, keeps it in ``.dslc/dvc-md5.json`` (same stamps as ``fingerprints.json``)
  and adds it to DVC's hash state (:mod:`dslc.dvc_state`): ``dvc add`` and stage commits
  then take it from there.
- When DVC rewrites a file dslc has fingerprinted (``dvc add`` and stage commits move it
  into DVC's cache and put a copy back), the copy has a new stamp. DVC records its md5;
  when that is the md5 of the content dslc last fingerprinted at the same path, the
  fingerprint carries over unread. The same path is required, not just the same md5: a
  fingerprint is never borrowed from another file's content. So is a new mtime: DVC's
  identity of a file leaves the ctime out, dslc's does not, so a file whose content was
  rewritten with its old mtime put back (``touch -r``) is read again, as without DVC.

Trusting DVC's state is trusting DVC: a file rewritten behind DVC's back after DVC
recorded it, with DVC's mtime put back, fools both until ``dslc data verify`` re-reads
it. DVC's cache types ``hardlink`` and ``symlink`` keep the mtime and change the ctime
(DVC makes its cache files read-only), so there dslc reads a file once more after ``dvc
add``; the default (``reflink,copy``) does not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .dvc_state import State
from .fingerprint import FingerprintCache, is_racy, stamp_of

MD5_CACHE = "dvc-md5.json"


class DvcHashes:
    """The md5 side of a fingerprint cache of a DVC project, shared with DVC's hash state
    (made by :func:`dslc.fingerprint.dvc_hashes`)."""

    def __init__(self, root: Path, fingerprints: FingerprintCache) -> None:
        assert fingerprints.file is not None
        self.fingerprints = fingerprints
        self.md5s = FingerprintCache(fingerprints.file.parent / MD5_CACHE, algo="md5")
        self.state = State.open(root)

    def known_md5(self, path: Path, st: os.stat_result) -> str | None:
        """The md5 of ``path`` as it is (stat ``st``), without reading it."""
        hit = self.md5s.get(str(path), stamp_of(st))
        if hit is None and self.state is not None:
            hit = self.state.md5(path, st)
        return hit

    def carried(self, path: Path, st: os.stat_result) -> str | None:
        """dslc's fingerprint of ``path`` as it is, without reading it: DVC knows its md5,
        which is the md5 of the content dslc last fingerprinted at this path."""
        if self.state is None:
            return None
        key = str(path)
        md5_before, fp_before = self.md5s.entry(key), self.fingerprints.entry(key)
        if md5_before is None or fp_before is None or md5_before[0] != fp_before[0]:
            return None  # no fingerprint and md5 of one same content
        if fp_before[0][1] == st.st_mtime_ns:
            return None  # not rewritten: changed in place with its mtime put back, or
            # only its mode changed; dslc's own stamp (ctime included) decides
        if self.state.md5(path, st) != md5_before[1]:
            return None  # DVC does not know this file, or it holds other content
        fp = str(fp_before[1])
        if not is_racy(st.st_mtime_ns):
            self.fingerprints.put(key, stamp_of(st), fp)
            self.md5s.put(key, stamp_of(st), md5_before[1])
        return fp

    def hashed(self, path: Path, st: os.stat_result, md5: str) -> None:
        """``md5`` was read with the fingerprint of ``path`` (stat ``st``, not racy)."""
        self.md5s.put(str(path), stamp_of(st), md5)
        if self.state is not None:
            self.state.record(path, st, md5)

    def remember(self, path: Path, stamp: list[Any], fp: str, md5: str) -> None:
        """``fp`` and ``md5`` are those of the content now at ``path``, read from a copy
        with the stamp ``stamp``: DVC's md5 of the file at ``path`` carries ``fp`` over."""
        self.fingerprints.put(str(path), stamp, fp)
        self.md5s.put(str(path), stamp, md5)

    def close(self) -> None:
        self.md5s.flush()
        if self.state is not None:
            self.state.close()
