"""DVC glue (helpers/README.md, DVC): DVC runs as a subprocess, never imported; md5s come
from the files DVC documents (``dvc.lock``, ``*.dvc``), never from its internal state."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config
from ._atomic import is_racy, read_regular, stamp_of
from ._fingerprint import FingerprintCache
from .errors import DslcError

_log = logging.getLogger(__name__)
_TIMEOUT_S = 3600.0


class DvcError(DslcError):
    """A DVC command failed, DVC is missing, or its remote or cache cannot serve the data."""


def enabled(root: Path) -> bool:
    return (Path(root) / ".dvc").is_dir()


def _first_error(output: str) -> str:
    """DVC's ``ERROR:`` message (its lines joined, up to its help link), else the last line."""
    end = r"(?=^\s*$|^<https://|^WARNING:|^ERROR:|\Z)"
    if found := re.search(rf"^ERROR:(.*?){end}", output, re.MULTILINE | re.DOTALL):
        return " ".join(found[1].split())
    lines = output.strip().splitlines()
    return lines[-1].strip() if lines else "no output"


def run(root: Path, *args: str, what: str | None = None) -> str:
    """Run ``dvc <args>`` at ``root``; its stdout, or a one-line DvcError."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    command = [sys.executable, "-m", "dvc", *args]
    with subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env) as proc:  # fmt: skip
        try:
            out, err = proc.communicate(timeout=_TIMEOUT_S)
        except BaseException as exc:  # Ctrl-C, SIGTERM (cli makes it one), the timeout
            proc.kill()  # DVC stops with dslc; pull sweeps the partial files it leaves
            proc.wait()  # reaped here: Popen waits only 0.25 s after a KeyboardInterrupt
            if isinstance(exc, subprocess.TimeoutExpired):
                raise DvcError(f"`dvc {' '.join(args)}` did not finish within an hour") from None
            raise
    if proc.returncode != 0:
        doing = what or f"dvc {args[0]}"
        raise DvcError(f"{doing} failed: {_first_error(err + out)}")
    return out


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    local: Path | None  # the folder, for a remote on this machine's file system


def remote(root: Path) -> Remote:
    """The default remote (``core.remote`` in ``.dvc/config``)."""
    # One start of DVC for every level of its config; a later line (config.local) wins.
    listed = run(root, "config", "--list", what="reading DVC's config (.dvc/config)")
    options = dict(line.partition("=")[::2] for line in listed.splitlines() if "=" in line)
    name = options.get("core.remote", "").strip()
    if not (url := options.get(f"remote.{name}.url", "").strip()):
        raise DvcError(
            "no DVC remote is set: name one with `uv run dslc team --remote <folder or URL>`"
            " (see .dvc/config)"
        )
    local = None
    if "://" not in url or url.startswith("file://"):  # relative: from .dvc/, as DVC reads it
        path = Path(url.removeprefix("file://")).expanduser()
        local = Path(os.path.normpath(root / ".dvc" / path))  # an absolute path stays as it is
    return Remote(name=name, url=url, local=local)


def push(root: Path) -> str:
    """``dvc push``, refused when an output or a cache file is not what this commit records,
    and checked afterwards: DVC says "Everything is up to date" when an object stays out."""
    where = remote(root)
    outs = tracked(root)
    if bad := _corrupted(root, outs):
        raise _corrupt(root, bad, "delete it, run `uv run dvc commit --force` to cache the work"
                       " tree's copy again, then `make push`; nothing was pushed")  # fmt: skip
    if changed := [path for path, state in drift(root, outs) if state == "modified"]:
        raise DvcError(
            f"{changed[0]} is not the version dvc.lock or its .dvc file records (made outside"
            " the pipeline?): run `make train` (or `dslc data add --replace`) and commit, then"
            " push; nothing was pushed"
        )
    out = run(root, "push", what=f"push to the DVC remote {where.name!r} ({where.url})")
    if left := sorted(p for p, state in cloud(root, where).items() if state != "deleted"):
        raise DvcError(
            f"{left[0]} did not reach the DVC remote {where.name!r} ({where.url}); run"
            " `make push` again, and check the remote's space and rights"
        )
    return out.strip().rpartition("\n")[2].strip() or "everything is up to date"


def drift(root: Path, outs: list[Output]) -> list[tuple[str, str]]:
    """(path, state) of each recorded output the work tree does not hold as recorded."""
    status = json.loads(run(root, "status", "--json", what="dvc status") or "{}")
    recorded = {out.path for out in outs}
    return sorted(
        (path, state)
        for entries in status.values()
        for entry in entries if isinstance(entry, dict)
        for path, state in (entry.get("changed outs") or {}).items()
        if path in recorded
    )  # fmt: skip


def cloud(root: Path, where: Remote) -> dict[str, str]:
    """{path: state} of the outputs whose objects the cache and the remote do not share."""
    status = run(root, "status", "--cloud", "--json", what=f"reaching the DVC remote {where.url}")
    return dict(json.loads(status or "{}"))


def set_remote(root: Path, url: str) -> None:
    """Make ``url`` the default remote in the committed ``.dvc/config``."""
    config.refuse_password(url, "the DVC remote's url")
    run(root, "remote", "add", "--default", "--force", "storage", url, what="dvc remote add")


def _yaml(file: Path) -> Any:
    """One of DVC's documented files (``dvc.yaml``, ``dvc.lock``, ``*.dvc``); {} if none.
    A FIFO or a broken link in its place is an error (read_regular), not an absent file."""
    import yaml

    if not os.path.lexists(file):
        return {}
    return yaml.safe_load(read_regular(file).decode("utf-8")) or {}


def stage_outputs(root: Path) -> set[str]:
    """The outputs dvc.yaml declares (paths from the root): ``dvc add`` leaves them alone."""
    found: set[str] = set()
    for stage in (_yaml(Path(root, "dvc.yaml")).get("stages") or {}).values():
        wdir = Path(stage.get("wdir") or ".")
        for key in ("outs", "metrics", "plots"):
            for out in stage.get(key) or ():
                path = out if isinstance(out, str) else next(iter(out))
                found.add(Path(os.path.normpath(wdir / path)).as_posix())
    return found


def stage_output(root: Path, path: Path) -> bool:
    """True when a stage of dvc.yaml produces ``path`` (or the folder holding it)."""
    rel = Path(os.path.relpath(path, root))
    return not stage_outputs(root).isdisjoint(str(p) for p in (rel, *rel.parents) if str(p) != ".")


def track(root: Path, path: Path) -> None:
    """``dvc add`` a file or folder, unless a stage of dvc.yaml makes it."""
    rel = Path(os.path.relpath(path, root)).as_posix()
    if rel in stage_outputs(root):
        return
    # Not --quiet: it silences ERROR lines too, and the one-line error quotes them.
    run(root, "add", rel, what=f"dvc add {rel}")
    protect_snapshots(root)


def protect_snapshots(root: Path) -> None:
    """Make snapshots read-only again: ``dvc add`` and ``dvc checkout`` leave them writable."""
    for file in Path(root, "data", "raw", "snapshots").glob("*/*.parquet"):
        file.chmod(0o444)


@dataclass(frozen=True)
class Output:
    """A file or folder DVC tracks: where it goes and its md5 (``<md5>.dir`` for a folder)."""

    path: str
    md5: str


def tracked(root: Path) -> list[Output]:
    """Every output that dvc.lock and the *.dvc files of this commit record."""
    outs: list[Output] = []
    for stage in (_yaml(Path(root, "dvc.lock")).get("stages") or {}).values():
        outs += [Output(o["path"], o["md5"]) for o in stage.get("outs") or () if "md5" in o]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "node_modules"]
        base = Path(dirpath).relative_to(root)
        for file in (Path(dirpath, name) for name in filenames if name.endswith(".dvc")):
            listed = _yaml(file).get("outs") or ()
            outs += [Output((base / o["path"]).as_posix(), o["md5"]) for o in listed if "md5" in o]
    return outs


def cache_file(root: Path, md5: str) -> Path:
    """Where DVC 3 keeps the object of ``md5`` in the project's cache."""
    return Path(root, ".dvc", "cache", "files", "md5", md5[:2], md5[2:])


# Run tags ``dslc.dvc.md5.<path from the root>`` hold the md5 of each input file a run read.
VERSION_TAG = "dslc.dvc.md5."


def file_md5(root: Path, path: Path) -> str | None:
    """The md5 DVC versions a file (an absolute ``path``) under, or None (README, DVC): from
    the pointer files while ``dvc data status`` says it matches, an answer cached on its stamp."""
    rel = Path(os.path.relpath(path, root)).as_posix()
    md5 = next(
        (md5 for out in tracked(root) for where, md5 in _files(root, out) if where == path), None
    )
    if md5 is None or not path.is_file():
        return None
    answers = FingerprintCache(config.state_dir(root) / "dvc-md5.json", algo="md5")
    before = stamp_of(path.stat())
    if answers.get(str(path), before) == md5:
        return md5
    try:
        status = json.loads(run(root, "data", "status", "--json", "--granular", rel) or "{}")
    except (DvcError, ValueError) as exc:
        _log.warning("could not ask DVC whether %s is the version it records: %s", rel, exc)
        return None
    changed = [p for paths in (status.get("uncommitted") or {}).values() for p in paths]
    after = path.stat()
    if rel in changed or stamp_of(after) != before:
        return None
    if not is_racy(after.st_mtime_ns):
        answers.put(str(path), before, md5)
        answers.flush()
    return md5


def _files(root: Path, out: Output) -> list[tuple[Path, str]]:
    """(destination, md5) of each file of an output; a folder's from its manifest."""
    if not out.md5.endswith(".dir"):
        return [(Path(root, out.path), out.md5)]
    try:
        manifest = json.loads(cache_file(root, out.md5).read_text(encoding="utf-8"))
        return [(Path(root, out.path, entry["relpath"]), entry["md5"]) for entry in manifest]
    except (OSError, ValueError, TypeError, KeyError):
        return []  # no manifest yet, or not DVC's: DVC reports it itself


def _corrupted(root: Path, outs: Iterable[Output]) -> tuple[Path, Path] | None:
    """(cache file, destination) of the first cache file not matching its md5, else None."""
    from ._fingerprint import hash_file  # looked up at each call: tests count its reads

    for out in outs:
        for destination, md5 in _files(root, out):
            cached = cache_file(root, md5)
            if cached.is_file() and hash_file(cached, algo="md5") != md5:
                return cached, destination
    return None


def _corrupt(root: Path, found: tuple[Path, Path], then: str) -> DvcError:
    cached, destination = (p.relative_to(root) for p in found)
    return DvcError(f"the DVC cache file {cached} for {destination} is corrupted (its content"
                    f" no longer matches its md5): {then}")  # fmt: skip


# dvc_objects' partial files: ``<name>.<22 random characters>.tmp`` beside their target.
_PARTIAL = re.compile(r"\.[A-Za-z0-9_-]{22}\.tmp$")


def sweep(root: Path) -> int:
    """Remove (and count) the partial files a killed DVC left beside the outputs, unless a
    DVC command runs here (it holds ``.dvc/tmp/lock``)."""
    if os.name == "nt":  # DVC's lock is an flock, which Windows lacks: nothing is removed
        return 0
    import fcntl

    Path(root, ".dvc", "tmp").mkdir(parents=True, exist_ok=True)
    with Path(root, ".dvc", "tmp", "lock").open("a") as lock:
        try:  # DVC's own lock (zc.lockfile: flock), held only while sweeping
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0
        outs = [Path(root, out) for out in stage_outputs(root) | {o.path for o in tracked(root)}]
        found = [file for out in outs for file in out.parent.glob("*.tmp")]
        found += [file for out in outs if out.is_dir() for file in out.rglob("*.tmp")]
        partial = {f for f in found if _PARTIAL.search(f.name) and f.is_file()}
        for file in partial:
            file.unlink(missing_ok=True)
    return len(partial)


def pull(root: Path) -> str:
    """Restore every output of this commit, once the remote holds all and the md5s match."""
    where = remote(root)
    if where.local is not None and not where.local.is_dir():
        what = "a file, not a folder" if where.local.exists() else "a folder that does not exist"
        raise DvcError(
            f"the DVC remote {where.name!r} is {where.local}, {what}: run `make push` where the"
            " data is, or point the remote at the team's folder (`uv run dslc team --remote"
            " <folder or URL>`)"
        )
    sweep(root)  # a pull killed before left them
    if missing := sorted(path for path, state in cloud(root, where).items() if state == "missing"):
        more = f" and {len(missing) - 1} more" * (len(missing) > 1)
        raise DvcError(
            f"the DVC remote {where.name!r} ({where.url}) lacks data this commit records:"
            f" {missing[0]}{more}; run `make push` in the clone that made it; data/ was left"
            " as it was"
        )
    outs = tracked(root)
    restore = [o for o in outs if not Path(root, o.path).exists()]
    # What the cache held before the fetch: a bad object fetched now is the remote's.
    held = {cache_file(root, md5) for o in restore for _, md5 in _files(root, o)}
    held = {file for file in held if file.is_file()}
    try:
        run(root, "fetch", what=f"fetch from the DVC remote {where.name!r} ({where.url})")
        if bad := _corrupted(root, restore):
            if bad[0] in held:
                raise _corrupt(root, bad, "delete it and run `make pull` again to fetch a good"
                               " copy; data/ was left as it was")  # fmt: skip
            bad[0].unlink()  # just fetched: keeping it would only make DVC trust it
            obj = bad[0].relative_to(Path(root, ".dvc", "cache")).as_posix()
            raise DvcError(
                f"the DVC remote {where.name!r} ({where.url}) holds a damaged copy of"
                f" {bad[1].relative_to(root)} (its {obj} does not match its md5): delete that"
                " object from the remote, then `make push` in a clone whose copy is good;"
                " data/ was left as it was"
            )
        if outs:  # by path: a stage that never ran (no dvc.lock entry) has nothing to restore
            run(root, "checkout", *[o.path for o in outs], what="dvc checkout")
    finally:
        sweep(root)  # what an interrupted fetch or checkout left
    protect_snapshots(root)
    return f"{len(restore)} output(s) restored, {len(outs) - len(restore)} already in place"
