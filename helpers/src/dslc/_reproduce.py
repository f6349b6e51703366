"""``dslc reproduce RUN_ID``: rebuild a tracked run from its commit and data versions, in a
temporary git worktree with a throwaway MLflow store (helpers/README.md, DVC)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from . import _dvc as dvc
from . import config
from ._atomic import alive
from .errors import DslcError
from .tracking._run import PATCH_ARTIFACT as PATCH
from .tracking._run import PATCH_TAG as TAG_PATCH


def bookkeeping(path: str) -> bool:
    """A file that only records data versions (`make train` rewrites it; md5 tags hold them)."""
    name = PurePosixPath(path)
    return (
        name.name == "dvc.lock"
        or name.suffix == ".dvc"
        or path.endswith("data/catalog.yml")
        or (name.name == ".gitignore" and "data" in name.parts)
    )


class ReproduceError(DslcError):
    """A run cannot be rebuilt: unknown, uncommitted, no command, or its data is gone."""


def plan(tags: dict[str, str], run_id: str) -> tuple[str, str, dict[str, str]]:
    """(commit, command, {input path: md5}) of a run, or a one-line refusal."""
    if not (commit := tags.get("mlflow.source.git.commit")):
        raise ReproduceError(f"run {run_id} has no git commit: it was not made in a repository")
    # The store is shared and writable by the team: what it says is checked, not obeyed.
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        raise ReproduceError(f"run {run_id}'s commit {commit[:50]!r} is not a git commit id")
    if tags.get("dslc.git.dirty") != "false" and TAG_PATCH not in tags:
        raise ReproduceError(
            f"run {run_id} was made from uncommitted code (commit {commit[:12]} plus changes"
            " the run did not record), so nothing holds what it ran"
        )
    if not (command := tags.get("dslc.entry_point")):
        raise ReproduceError(
            f"run {run_id} records no command to run again (started from python -c, an"
            " interactive session or an unnamed notebook)"
        )
    if not re.fullmatch(r"python -m [A-Za-z_]\w*(\.[A-Za-z_]\w*)*", command):
        raise ReproduceError(
            f"run {run_id} records the command {command[:80]!r}; dslc reproduce runs only a"
            " module of the run's own commit (python -m package.module)"
        )
    versions = {}
    for key, md5 in tags.items():
        if key.startswith(dvc.VERSION_TAG):
            rel = PurePosixPath(key.removeprefix(dvc.VERSION_TAG))
            if rel.is_absolute() or ".." in rel.parts or not re.fullmatch(r"[0-9a-f]{32}", md5):
                raise ReproduceError(f"run {run_id} has a data tag {key[:80]!r} = {md5[:40]!r}"
                                     " that names no file of the project")  # fmt: skip
            versions[str(rel)] = md5
    return commit, command, versions


def _git(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["git", "-C", str(where), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@contextmanager
def worktree(root: Path, commit: str) -> Iterator[Path]:
    """A temporary, detached git worktree at ``commit``, removed on the way out; those of
    killed reproduces (the process id in their name is gone) are removed first."""
    ours = r"^worktree (.*/dslc-reproduce-(\d+)-[^/]*/project)$"
    for path, pid in re.findall(ours, _git(root, "worktree", "list", "--porcelain").stdout, re.M):
        if not alive(int(pid)):  # a live one (or another user's) is not ours to remove
            _git(root, "worktree", "remove", "--force", path)
            shutil.rmtree(Path(path).parent, ignore_errors=True)
    _git(root, "worktree", "prune")
    prefix = f"dslc-reproduce-{os.getpid()}-"
    try:
        with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as parent:
            folder = Path(parent) / "project"
            result = _git(root, "worktree", "add", "--detach", "--quiet", str(folder), commit)
            if result.returncode != 0:
                reason = result.stderr or f"exit {result.returncode}"  # one line: DslcError
                raise ReproduceError(f"cannot check out commit {commit[:12]}: {reason}")
            try:
                yield folder
            finally:
                _git(root, "worktree", "remove", "--force", str(folder))
    finally:
        _git(root, "worktree", "prune")  # forget the worktree even if `remove` failed


def apply_changes(tree: Path, patch: Path, run_id: str, allowed: bool) -> None:
    """Apply the run's recorded uncommitted changes in ``tree`` (``git apply`` refuses paths
    outside it). Code from the shared store runs only with ``--apply-changes``."""
    listed = _git(tree, "apply", "--numstat", str(patch))
    paths = [line.split("\t", 2)[-1] for line in listed.stdout.splitlines()]
    if listed.returncode != 0:
        raise ReproduceError(f"run {run_id}'s recorded changes are no patch: {listed.stderr}")
    if all(map(bookkeeping, paths)):  # data versions only: the md5 tags put the data back
        return
    shown = ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")
    if not allowed:
        raise ReproduceError(
            f"run {run_id} was made from uncommitted changes to {shown}, kept in the tracking"
            " store, which the team can write: read them (`dslc mlflow artifacts download -r"
            f" {run_id} -a {PATCH}`), then run `dslc reproduce {run_id} --apply-changes`"
        )
    print(f"applying the run's uncommitted changes to {shown}", file=sys.stderr, flush=True)
    if (applied := _git(tree, "apply", "--whitespace=nowarn", str(patch))).returncode != 0:
        raise ReproduceError(f"run {run_id}'s changes do not apply: {applied.stderr}")


def checkout_data(root: Path, tree: Path, versions: dict[str, str]) -> None:
    """The commit's DVC data in ``tree``, then each input at the md5 the run read (fetched if
    the cache lacks it); DVC's complaints (stages not run yet) matter only for those inputs."""
    dvc.run(tree, "cache", "dir", "--local", str(root / ".dvc" / "cache"))
    complaint = _tolerated(tree, "checkout")
    missing = [rel for rel, md5 in versions.items() if not _place(root, tree, rel, md5)]
    if missing:
        complaint = _tolerated(tree, "fetch") or complaint
        missing = [rel for rel in missing if not _place(root, tree, rel, versions[rel])]
    if missing:
        raise ReproduceError(
            f"the version of {missing[0]} the run read (md5 {versions[missing[0]]}) is in"
            " neither the DVC cache nor the remote"
            + (f" ({complaint})" if complaint else "")
            + "; `make push` it from a clone that has it, then retry"
        )


def _tolerated(tree: Path, command: str) -> str:
    """Run a DVC command whose failure may concern other files; its error, if any."""
    try:
        dvc.run(tree, command)
    except dvc.DvcError as exc:
        return str(exc)
    return ""


def _place(root: Path, tree: Path, rel: str, md5: str) -> bool:
    """Copy the cache object ``md5`` to ``tree/rel``; without one, True if the file there is it."""
    target = tree / rel
    cached = dvc.cache_file(root, md5)
    if not cached.is_file():
        return target.is_file() and dvc.file_md5(tree, target) == md5
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)  # a link into the cache must not be written through
    shutil.copyfile(cached, target)
    return True


def rerun(tree: Path, command: str) -> dict[str, float]:
    """Run ``command`` in ``tree`` with the project's environment; the new run's metrics."""
    from mlflow import MlflowClient

    store = f"sqlite:///{(tree / 'mlflow.db').as_posix()}"
    module = command.removeprefix("python -m ")
    # The worktree's code before the project's own (installed editable from root/src).
    path = os.pathsep.join(filter(None, [str(tree / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PYTHONPATH": path}
    # The stage runs as DVC would run it (data.require_stage): its outputs stay in a
    # worktree that is thrown away, so no dvc.lock can disagree with them.
    env |= {"DSLC_PROJECT_ROOT": str(tree), "DVC_STAGE": module}
    source = tree / "src" / Path(*module.split("."))
    if not (source.with_suffix(".py").is_file() or (source / "__main__.py").is_file()):
        raise ReproduceError(f"the run's commit has no module {module} under src/")
    print(f"running `{command}` at {tree}", file=sys.stderr, flush=True)
    result = subprocess.run([sys.executable, "-m", module], cwd=tree, env=env, check=False)
    if result.returncode != 0:
        raise ReproduceError(f"`{command}` failed (exit {result.returncode}) on the run's commit")
    client = MlflowClient(tracking_uri=store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, order_by=["start_time DESC"], max_results=1)
    if not runs:
        raise ReproduceError(f"`{command}` made no tracked run")
    return dict(runs[0].data.metrics)


def compare(
    recorded: dict[str, float], new: dict[str, float], tolerance: float
) -> tuple[list[str], bool]:
    """A table (lines) of every recorded metric beside its new value, and whether all match."""
    rows = [("METRIC", "RECORDED", "NEW", "MATCH")]
    for name in sorted(recorded):
        old, now = recorded[name], new.get(name)
        ok = now is not None and abs(now - old) <= tolerance * (abs(old) or 1.0)
        shown = "-" if now is None else f"{now:.6g}"
        rows.append((name, f"{old:.6g}", shown, "yes" if ok else "NO"))
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
    lines = ["  ".join(map(str.ljust, row, widths)).rstrip() for row in rows]
    return lines, all(row[3] == "yes" for row in rows[1:])


def main(run_id: str, tolerance: float = 1e-6, apply: bool = False) -> int:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    r = config.project_root()
    if not dvc.enabled(r):
        raise ReproduceError(
            "dslc reproduce needs the data versions DVC keeps: this project has no .dvc folder"
            " (made with data_versioning=none)"
        )
    if not re.fullmatch(r"[0-9a-f]{6,32}", run_id):
        raise ReproduceError(
            f"{run_id[:40]!r} is not a run id: give the ID `dslc runs` shows (6 to 32 hex digits)"
        )
    client = MlflowClient(tracking_uri=config.tracking_uri(r))
    try:  # a prefix, as `dslc runs` shows it, names the one run whose id starts with it
        experiments = [e.experiment_id for e in client.search_experiments()]
        found = client.search_runs(experiments, f"attributes.run_id LIKE '{run_id}%'")
    except MlflowException as exc:
        raise ReproduceError(f"cannot read the project's tracking store: {exc}") from None
    if len(found) != 1:
        raise ReproduceError(
            f"{'no run' if not found else f'{len(found)} runs'} with id {run_id!r} in the "
            "project's tracking store: `dslc runs` lists the run ids"
        )
    run = found[0]
    run_id = run.info.run_id
    commit, command, versions = plan(dict(run.data.tags), run_id)
    with worktree(r, commit) as tree:
        if TAG_PATCH in run.data.tags:  # the changes, not the tag's value: that names nothing
            try:
                patch = Path(client.download_artifacts(run_id, PATCH, str(tree.parent)))
            except (MlflowException, OSError) as exc:
                raise ReproduceError(f"cannot read run {run_id}'s {PATCH}: {exc}") from None
            apply_changes(tree, patch, run_id, apply)
        checkout_data(r, tree, versions)
        new = rerun(tree, command)
    lines, same = compare(dict(run.data.metrics), new, tolerance)
    print("\n".join(lines))
    verdict = "reproduced" if same else "NOT reproduced"
    print(f"run {run_id} {verdict} from commit {commit[:12]} ({len(versions)} data file(s))")
    return 0 if same else 1
