"""Git state of a working tree (commit, branch, dirty), for run tags and ``dslc info``."""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

_TIMEOUT_S = 3.0
# An untracked file larger than this is data, not code: it stays out of a run's patch.
MAX_UNTRACKED_BYTES = 10 << 20


@dataclass(frozen=True)
class GitState:
    commit: str
    branch: str | None
    dirty: bool


def _git(folder: Path | str, *args: str, timeout: float = 60, ok: int = 0) -> bytes:
    """What ``git -C folder ARGS`` prints, b"" unless it exits 0 or ``ok``. Optional locks
    off: a read-only query must not take index.lock and race with the user's git."""
    cmd = ["git", "-C", str(folder), *args]
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(cmd, capture_output=True, env=env, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError, ValueError):
        return b""
    return done.stdout if done.returncode in (0, ok) else b""


def git_state(path: Path) -> GitState | None:
    """The git state of the repository holding ``path``, else None (see helpers/README.md,
    Git state). Untracked files do not count: generated data and outputs often are."""
    folder = path if path.is_dir() else path.parent
    # One call gives commit, branch and changes (porcelain v2 headers).
    status = ["status", "--porcelain=v2", "-z", "--branch", "--untracked-files=no"]
    records = _git(folder, *status, timeout=_TIMEOUT_S).decode(errors="replace").split("\0")
    headers = dict(r[2:].partition(" ")[::2] for r in records if r.startswith("# branch."))
    commit, branch = headers.get("branch.oid", "(initial)"), headers.get("branch.head")
    if commit == "(initial)":
        return None
    # Entries of changed files: ordinary (1), renamed (2), unmerged (u).
    dirty = any(r[:2] in ("1 ", "2 ", "u ") for r in records)
    return GitState(commit, None if branch == "(detached)" else branch, dirty)


def changes_patch(path: Path) -> bytes:
    """What the work tree holds beyond HEAD as one patch for ``git apply``: changes to tracked
    files and every untracked, not ignored file, as DVC experiments keep them; b"" when
    there are none or git cannot say. Paths from the repository's top; no index touched."""
    if not (top := os.fsdecode(_git(path, "rev-parse", "--show-toplevel")).strip()):
        return b""
    # Plain patches whatever the user's config: no textconv (notebooks), a/ and b/ prefixes.
    diff = ["diff", "--no-textconv", "--no-ext-diff", "--no-color", "--binary",
            "--src-prefix=a/", "--dst-prefix=b/"]  # fmt: skip
    patch = _git(top, *diff, "HEAD")
    untracked = _git(top, "ls-files", "--others", "--exclude-standard", "-z")
    for name in filter(None, os.fsdecode(untracked).split("\0")):  # not all names are UTF-8
        try:  # a link's size is its target's path: git records the link, not what it names
            size = os.lstat(Path(top, name)).st_size
        except OSError:
            size = 0
        if size > MAX_UNTRACKED_BYTES:
            logging.getLogger("dslc.tracking").warning(
                "%s (untracked, %d MiB) is not in the run's recorded changes: commit, "
                "ignore or `dslc data add` it",
                name,
                size >> 20,
            )
            continue
        patch += _git(top, *diff, "--no-index", "--", "/dev/null", name, ok=1)
    return patch
