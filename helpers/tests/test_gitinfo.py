from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dslc._gitinfo import GitState, changes_patch, git_state

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True)
    return out.stdout.decode().strip()


def test_not_a_repo(tmp_path: Path) -> None:
    assert git_state(tmp_path) is None


def test_no_commit_yet(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    assert git_state(tmp_path) is None


def test_clean_dirty_detached(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q", "-b", "work")
    (tmp_path / "a.txt").write_text("1")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-qm", "one")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert git_state(tmp_path) == GitState(commit=head, branch="work", dirty=False)
    (tmp_path / "untracked.txt").write_text("x")
    assert git_state(tmp_path / "a.txt").dirty is False  # type: ignore[union-attr]
    (tmp_path / "a.txt").write_text("2")
    assert git_state(tmp_path).dirty is True  # type: ignore[union-attr]
    _git(tmp_path, "checkout", "-q", "--detach")
    assert git_state(tmp_path).branch is None  # type: ignore[union-attr]


def test_changes_of_every_kind_make_it_dirty(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q", "-b", "work")
    for name in ("a.txt", "with space.txt", "old.txt"):
        (tmp_path / name).write_text("1")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "one")
    (tmp_path / "with space.txt").write_text("2")  # modified
    assert git_state(tmp_path).dirty is True  # type: ignore[union-attr]
    _git(tmp_path, "checkout", "--", "with space.txt")
    assert git_state(tmp_path).dirty is False  # type: ignore[union-attr]
    _git(tmp_path, "mv", "old.txt", "new.txt")  # renamed, staged: a "2" entry
    assert git_state(tmp_path).dirty is True  # type: ignore[union-attr]


def test_git_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert git_state(tmp_path) is None


def test_an_untracked_file_whose_name_is_not_utf8_goes_into_the_patch(tmp_path: Path) -> None:
    """A name git lists as raw bytes (Latin-1 here) is no reason to fail a run's start: it is
    recorded as git stores it, and the patch brings it back."""
    repo, clone = tmp_path / "repo", tmp_path / "clone"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("1")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-qm", "one")
    name = os.fsdecode(b"caf\xe9.txt")
    (repo / name).write_text("x\n")
    patch = changes_patch(repo)
    _git(tmp_path, "clone", "-q", str(repo), str(clone))
    subprocess.run([*GIT, "-C", str(clone), "apply"], input=patch, check=True)
    assert (clone / name).read_text() == "x\n"
