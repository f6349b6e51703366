"""Git state of a working tree (commit, branch, dirty), for run tags and ``dslc info``."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

_TIMEOUT_S = 3.0
# Fields before the path in porcelain v2 entries: ordinary (1), renamed (2), unmerged (u).
_PATH_FIELD = {"1": 8, "2": 9, "u": 10}


@dataclass(frozen=True)
class GitState:
    """``changed``: tracked paths from the repository's top (renames by their new path)."""

    commit: str
    branch: str | None
    dirty: bool
    changed: tuple[str, ...] = ()


def git_state(path: Path) -> GitState | None:
    """The git state of the repository holding ``path``, else None (see helpers/README.md,
    Git state). Untracked files do not count: generated data and outputs often are."""
    folder = path if path.is_dir() else path.parent
    # One call gives commit, branch and changes (porcelain v2 headers). Optional locks
    # off: a read-only query must not take index.lock and race with the user's git.
    cmd = ["git", "-C", str(folder), "status", "--porcelain=v2", "-z", "--branch",
           "--untracked-files=no"]  # fmt: skip
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, env=env, check=False
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    headers: dict[str, str] = {}
    changed: list[str] = []
    records = iter(proc.stdout.split("\0") if proc.returncode == 0 else ())
    for record in records:
        kind = record[:1]
        if record.startswith("# branch."):
            key, _, value = record[2:].partition(" ")
            headers[key] = value
        elif kind in _PATH_FIELD:
            changed.append(record.split(" ", _PATH_FIELD[kind])[-1])
            if kind == "2":
                next(records)  # a rename's original path, a record of its own
    commit, branch = headers.get("branch.oid", "(initial)"), headers.get("branch.head")
    if commit == "(initial)":
        return None
    branch = None if branch == "(detached)" else branch
    return GitState(commit=commit, branch=branch, dirty=bool(changed), changed=tuple(changed))


def changes_patch(path: Path) -> bytes:
    """What the work tree holds beyond HEAD as one patch for ``git apply``: changes to tracked
    files and every untracked, not ignored file, as DVC experiments keep them; b"" when
    there are none or git cannot say. Paths from the repository's top; no index touched."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    top = str(path)

    def git(*args: str) -> bytes:
        try:
            done = subprocess.run(["git", "-C", top, *args], capture_output=True, env=env,
                                  timeout=60, check=False)  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return b""
        return done.stdout

    top = git("rev-parse", "--show-toplevel").decode().strip()
    if not top:
        return b""
    # Plain patches whatever the user's config: no textconv (notebooks), a/ and b/ prefixes.
    diff = ["diff", "--no-textconv", "--no-ext-diff", "--no-color", "--binary",
            "--src-prefix=a/", "--dst-prefix=b/"]  # fmt: skip
    patch = git(*diff, "HEAD")
    for name in filter(None, git("ls-files", "--others", "--exclude-standard", "-z").split(b"\0")):
        patch += git(*diff, "--no-index", "--", "/dev/null", name.decode())
    return patch
