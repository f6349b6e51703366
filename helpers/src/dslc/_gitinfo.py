"""Git state of a working tree (commit, branch, dirty), for run tags and ``dslc info``."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class GitState:
    """Commit, branch (None when detached), whether tracked files have changes, and the
    paths that changed (from the repository's top; renames by their new path)."""

    commit: str
    branch: str | None
    dirty: bool
    changed: tuple[str, ...] = ()


def git_state(path: Path) -> GitState | None:
    """Return the git state of the repository containing ``path``, or None (no git, not a
    repository, no commit yet, git failing or hanging); never raises. ``dirty`` ignores
    untracked files: generated data and outputs often are.
    """
    folder = Path(path)
    if not folder.is_dir():
        folder = folder.parent
    # One call gives commit, branch and changes (porcelain v2 headers). Optional locks
    # off: a read-only query must not take index.lock and race with the user's git.
    cmd = ["git", "-C", str(folder), "status", "--porcelain=v2", "--branch",
           "--untracked-files=no"]  # fmt: skip
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, env=env, check=False
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if proc.returncode != 0:
        return None
    return _parse_status(proc.stdout)


def _parse_status(out: str) -> GitState | None:
    commit: str | None = None
    branch: str | None = None
    dirty = False
    changed: list[str] = []
    for line in out.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2].strip()
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
            changed.append(_changed_path(line))
    if commit is None:
        return None
    return GitState(commit=commit, branch=branch, dirty=dirty, changed=tuple(changed))


# Fields before the path in porcelain v2 entries: ordinary (1), renamed (2), unmerged (u).
_PATH_FIELD = {"1": 8, "2": 9, "u": 10}


def _changed_path(line: str) -> str:
    fields = line.split(" ", _PATH_FIELD.get(line[:1], 1))
    path = fields[-1]
    return path.split("\t", 1)[0] if line.startswith("2 ") else path
