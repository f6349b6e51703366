"""dslc and the real DVC share their hashes: each unchanged file is read once between them.

DVC runs for real (the dev group installs it) in subprocesses, as dslc runs it; the
folder ``hashlog`` on PYTHONPATH logs every file either tool reads to hash
(``<tool> <path>`` per read), so the tests count reads instead of timing them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import age
from hashlog.sitecustomize import logged
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dslc import cli, data, dvc, dvc_state, fingerprint
from dslc.dvc_hashes import MD5_CACHE

HASHLOG = Path(__file__).with_name("hashlog")
pytestmark = pytest.mark.slow  # DVC's start-up: about a second a command


@pytest.fixture
def dvc_project(project: Path, tmp_path: Path, monkeypatch) -> Path:
    """The project under git and DVC (analytics off), with DVC's state in tmp_path.

    DVC is set up in this process (a tenth of a second once imported); what the tests
    check runs DVC's command line, as dslc does.
    """
    from dvc.repo import Repo

    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path / "dvc-site-cache"))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    Repo.init(str(project)).close()
    configure(project, core={"analytics": False})  # DVC's first start made its state database
    return project


def configure(project: Path, **sections: dict) -> None:
    """Set DVC options (``.dvc/config``) as ``dvc config`` would, without its start-up."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo, repo.config.edit() as config:
        for name, options in sections.items():
            config.setdefault(name, {}).update(options)


@pytest.fixture
def reads(tmp_path: Path, monkeypatch) -> Reads:
    """The files read to be hashed, by dslc here and by any process started from here."""
    log = tmp_path / "hash.log"
    log.touch()
    monkeypatch.setenv("HASH_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HASHLOG), os.getenv("PYTHONPATH", "")]))
    monkeypatch.setattr(fingerprint, "hash_file", logged(fingerprint.hash_file, "dslc"))
    monkeypatch.setattr(dvc, "_md5", logged(dvc._md5, "dslc"))
    return Reads(log)


class Reads:
    def __init__(self, log: Path) -> None:
        self.log = log

    def files(self) -> list[tuple[str, str]]:
        """(tool, path) of each read of a file since the last ``clear``, in order (DVC
        also hashes objects it keeps in memory: not files)."""
        lines = self.log.read_text(encoding="utf-8").splitlines()
        reads = [line.partition(" ")[::2] for line in lines]
        return [(tool, path) for tool, path in reads if "/memory:/" not in path]

    def of(self, path: Path) -> list[str]:
        """The tools that read ``path`` to hash it, in order."""
        return [tool for tool, where in self.files() if where == os.path.abspath(path)]

    def clear(self) -> None:
        self.log.write_text("")


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def real_state(root: Path):
    """DVC's own State object of the project, as DVC opens it."""
    from dvc.repo import Repo

    repo = Repo(str(root))
    return repo, repo.state


# --- the database, as dvc-data reads and writes it ---------------------------------------


def dvcs_database(root: Path) -> Path:
    """Where DVC itself puts the project's state database (DVC makes it if missing)."""
    repo, _ = real_state(root)
    try:
        return Path(repo.site_cache_dir) / "hashes" / "local" / "cache.db"
    finally:
        repo.close()


def test_dslc_finds_dvcs_state_database_where_dvc_keeps_it(dvc_project: Path) -> None:
    assert dvc_state._database(dvc_project) == dvcs_database(dvc_project)


def test_dslc_finds_it_without_a_site_cache_setting_too(dvc_project: Path, monkeypatch):
    """DVC's default place (/var/tmp/dvc on Linux) and a core.site_cache_dir in config."""
    monkeypatch.delenv("DVC_SITE_CACHE_DIR")
    for setting in (None, str(dvc_project.parent / "configured-cache")):
        if setting:
            configure(dvc_project, core={"site_cache_dir": setting})
        expected = dvcs_database(dvc_project)
        dvc_state._found.clear()
        assert dvc_state._database(dvc_project) == expected
        if setting:
            assert str(expected).startswith(setting)


def test_entries_dslc_writes_are_entries_dvc_reads_and_back(dvc_project: Path) -> None:
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_objects.fs import LocalFileSystem

    mine, theirs = dvc_project / "data/raw/iris.csv", dvc_project / "data/raw/other.csv"
    theirs.write_text("a\n1\n")
    state = dvc_state.State.open(dvc_project)
    assert state is not None
    state.record(mine, mine.stat(), "0" * 32)
    state.close()
    repo, dvc_side = real_state(dvc_project)
    fs = LocalFileSystem()
    try:
        _, hash_info = dvc_side.get(str(mine), fs)
        assert hash_info == HashInfo("md5", "0" * 32)
        dvc_side.save(str(theirs), fs, HashInfo("md5", "1" * 32))
    finally:
        repo.close()
    state = dvc_state.State.open(dvc_project)
    assert state is not None
    assert state.md5(theirs, theirs.stat()) == "1" * 32
    theirs.write_text("a\n2\n")  # same size, another file now: the entry no longer counts
    assert state.md5(theirs, theirs.stat()) is None
    state.close()


def test_sharing_is_off_where_it_cannot_be_trusted(dvc_project: Path, monkeypatch) -> None:
    assert dvc_state.State.open(dvc_project) is not None
    for value in ("off", "0", "false"):
        monkeypatch.setenv(dvc_state.SWITCH, value)
        assert dvc_state.State.open(dvc_project) is None
    monkeypatch.delenv(dvc_state.SWITCH)
    (dvc_project / ".dvc" / "tmp" / "btime").unlink()  # a project DVC never started in
    dvc_state._found.clear()
    assert dvc_state.State.open(dvc_project) is None
    from dvc.repo import Repo

    Repo(str(dvc_project)).close()  # DVC's first start: dslc finds its new database
    assert dvc_state.State.open(dvc_project) is not None


def test_a_broken_or_locked_database_only_costs_a_hash(dvc_project: Path) -> None:
    file = dvc_project / "data/raw/iris.csv"
    database = dvc_state._database(dvc_project)
    assert database is not None
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # DVC in the middle of a write, for longer than dslc waits
    try:
        state = dvc_state.State(dvc_project, database)
        state._connection = sqlite3.connect(database, timeout=0.1, isolation_level=None)
        state.record(file, file.stat(), "2" * 32)  # no error: DVC will hash it itself
        assert state.md5(file, file.stat()) is None
        state.close()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    database.write_bytes(b"not a database" * 100)
    state = dvc_state.State(dvc_project, database)
    state.record(file, file.stat(), "3" * 32)
    assert state.md5(file, file.stat()) is None
    state.close()


def test_entries_of_other_versions_or_shapes_are_not_trusted(dvc_project: Path) -> None:
    file = dvc_project / "data/raw/iris.csv"
    state = dvc_state.State.open(dvc_project)
    assert state is not None
    key = os.path.join(os.path.realpath(dvc_project), "data/raw/iris.csv")
    checksum = dvc_state.checksum(file.stat())
    for value in (
        {"checksum": checksum, "size": 1, "hash_info": {"md5": "4" * 32}},  # DVC 2: dos2unix
        {"version": 2, "checksum": checksum, "size": 1, "hash_info": {"md5": "4" * 32}},
        {"version": 1, "checksum": checksum, "size": 1, "hash_info": {"blake3": "4" * 32}},
        {"version": 1, "checksum": checksum, "size": 1, "hash_info": ["4" * 32]},
        ["not", "an", "entry"],
    ):
        state._db().execute(dvc_state._UPSERT, (key, json.dumps(value)))
        assert state.md5(file, file.stat()) is None, value
    state._db().execute(dvc_state._UPSERT, (key, "{not json"))
    assert state.md5(file, file.stat()) is None
    state.close()


@given(
    inode=st.integers(min_value=0, max_value=2**64 - 1),
    mtime=st.floats(allow_nan=False, allow_infinity=False) | st.integers(0, 2**40),
    size=st.integers(min_value=0, max_value=2**63 - 1),
)
def test_the_identity_token_is_fsspecs_tokenize(inode: int, mtime: float, size: int) -> None:
    """What dvc-data's State computes (``tokenize([ino, mtime, size])``), for any stat."""
    from fsspec.utils import tokenize

    st_ = os.stat_result((0o100644, inode, 0, 1, 0, 0, size, 0, mtime, 0))
    assert dvc_state.checksum(st_) == str(int(tokenize([inode, mtime, size]), 16))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=JSON
    | st.fixed_dictionaries({"version": JSON, "checksum": JSON, "size": JSON, "hash_info": JSON})
)
def test_whatever_the_database_holds_only_a_valid_entry_gives_an_md5(dvc_project, value):
    file = dvc_project / "data/raw/iris.csv"
    state = dvc_state.State.open(dvc_project)
    assert state is not None
    key = os.path.join(os.path.realpath(dvc_project), "data/raw/iris.csv")
    state._db().execute(dvc_state._UPSERT, (key, json.dumps(value)))
    assert state.md5(file, file.stat()) is None  # never an error, never a made-up md5
    state.close()


def test_a_project_reached_through_a_link_has_dvcs_keys(dvc_project: Path, tmp_path: Path):
    link = tmp_path / "link-to-project"
    link.symlink_to(dvc_project)
    file = link / "data/raw/iris.csv"
    state = dvc_state.State(link, dvc_state._database(dvc_project))
    assert state._key(file) == os.path.join(os.path.realpath(dvc_project), "data/raw/iris.csv")
    state.close()


# --- whole flows: each unchanged file read once ------------------------------------------


def test_dslc_data_add_is_the_only_read_of_a_new_file(dvc_project: Path, reads) -> None:
    file = dvc_project / "data/raw/iris.csv"
    age(file)
    assert cli.main(["data", "add", "iris", "raw/iris.csv", "--replace"]) == 0
    assert reads.of(file) == ["dslc"]  # dvc add took the md5 from its state
    assert (dvc_project / "data/raw/iris.csv.dvc").read_text().count(md5_of(file)) == 1
    reads.clear()
    # DVC put a copy of its cache object in place (new inode and times): nothing re-reads it.
    assert data.fingerprint("iris") == "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest()
    assert dvc.file_md5(dvc_project, file) == md5_of(file)
    dvc.run(dvc_project, "status")
    assert reads.of(file) == []


def test_content_rewritten_with_its_mtime_put_back_is_read_again(dvc_project, reads):
    """DVC's identity of a file leaves out the ctime; dslc does not trust it there."""
    file = dvc_project / "data/raw/iris.csv"
    age(file)
    assert cli.main(["data", "add", "iris", "raw/iris.csv", "--replace"]) == 0
    before = data.fingerprint("iris")  # carried over DVC's copy, and cached
    st = file.stat()
    file.chmod(0o644)
    file.write_text(file.read_text().replace("setosa", "SETOSA", 1))  # same size
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))
    reads.clear()
    after = data.fingerprint("iris")
    assert after != before and after == "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest()
    assert reads.of(file) == ["dslc"]


def test_a_file_dslc_just_saved_gives_dvc_its_md5(dvc_project: Path, reads) -> None:
    import pandas as pd

    data.save(pd.DataFrame({"a": [1, 2]}), "interim/fresh.csv")  # a plain path, no catalog
    file = dvc_project / "data/interim/fresh.csv"
    md5s = json.loads((dvc_project / ".dslc" / MD5_CACHE).read_text())["entries"]
    assert md5s[str(file)][1] == md5_of(file)  # cached at once: dslc wrote it whole
    dvc.run(dvc_project, "add", "data/interim/fresh.csv")
    assert reads.of(file) == ["dslc"]


def test_a_file_another_program_may_still_be_writing_is_left_to_dvc(dvc_project, reads):
    file = dvc_project / "data/interim/fresh.csv"
    file.write_text("a,b\n1,2\n")  # just now: its stamp could hide a write to come
    fingerprint.fingerprint_path(file, dvc_project / ".dslc" / "fingerprints.json")
    assert not (dvc_project / ".dslc" / MD5_CACHE).exists()
    dvc.run(dvc_project, "add", "data/interim/fresh.csv")
    assert reads.of(file) == ["dslc", "dvc"]  # DVC reads it itself: nothing shared is stale


STAGE = """\
stages:
  make:
    cmd: {python} make.py
    outs:
      - data/processed/out.parquet
      - data/processed/parts
"""
MAKE = """\
import pandas as pd
from dslc import data

frame = pd.DataFrame({"x": range(1000), "y": [i * 0.5 for i in range(1000)]})
data.save(frame, "out")
for part in range(3):
    data.save(frame.iloc[part::3], f"processed/parts/{part}.csv")
"""


def test_stage_outputs_dslc_saved_are_read_once_from_save_to_next_load(dvc_project, reads):
    (dvc_project / "dvc.yaml").write_text(STAGE.format(python=sys.executable))
    (dvc_project / "make.py").write_text(MAKE)
    catalog = dvc_project / "data/catalog.yml"
    catalog.write_text(catalog.read_text() + "  out:\n    location: processed/out.parquet\n")
    out = dvc_project / "data/processed/out.parquet"
    parts = [dvc_project / f"data/processed/parts/{n}.csv" for n in range(3)]

    dvc.run(dvc_project, "repro")
    for path in (out, *parts):  # data.save read each once, for both hashes; DVC's
        assert reads.of(path) == ["dslc"], path  # commit took the md5s from its state
    reads.clear()
    # DVC moved them to its cache and put copies back: the next stage's loads read nothing.
    assert data.load("out").shape == (1000, 2)
    assert data.fingerprint("out").startswith("sha256:")
    assert data.fingerprint("processed/parts").startswith("sha256:")
    assert dvc.file_md5(dvc_project, out) == md5_of(out)
    assert "didn't change" in dvc.run(dvc_project, "repro")
    for path in (out, *parts):
        assert reads.of(path) == [], path


def test_a_pull_checks_each_cache_file_of_a_folder_and_reads_each_file_once(
    dvc_project: Path, tmp_path: Path, reads
):
    folder = dvc_project / "data/raw/images"
    folder.mkdir()
    for n in range(3):
        (folder / f"{n}.bin").write_bytes(os.urandom(2048))
        age(folder / f"{n}.bin")
    configure(
        dvc_project,
        core={"remote": "storage"},
        remote={"storage": {"url": str(tmp_path / "remote")}},
    )
    assert cli.main(["data", "add", "images", "raw/images"]) == 0
    assert "pushed" in dvc.push(dvc_project)
    fingerprints = {path: fingerprint.fingerprint_path(path) for path in folder.iterdir()}
    rotten = dvc.cache_file(dvc_project, md5_of(folder / "1.bin"))
    subprocess.run(["rm", "-rf", str(folder)], check=True)

    # Rotten behind DVC's back, and read-only as DVC leaves it: DVC itself would trust it.
    rotten.chmod(0o644)
    rotten.write_bytes(b"rotten")
    rotten.chmod(0o444)
    with pytest.raises(dvc.DvcError, match=r"corrupted .*data/ was left as it was") as err:
        dvc.pull(dvc_project)
    assert "data/raw/images/1.bin is corrupted" in str(err.value)
    assert not folder.exists()

    subprocess.run(["rm", "-rf", str(dvc_project / ".dvc" / "cache")], check=True)  # a new clone
    reads.clear()
    assert "1 output(s) restored" in dvc.pull(dvc_project)
    cache = dvc_project / ".dslc" / "fingerprints.json"
    for path, fp in fingerprints.items():
        assert reads.of(path) == []  # the check of its cache file read the content...
        assert fingerprint.fingerprint_path(path, cache) == fp
        assert reads.of(path) == []  # ... and the restored file keeps that fingerprint
    # Three cache files, one read each; DVC read no file (only its own in-memory objects).
    assert sorted(tool for tool, _ in reads.files()) == ["dslc"] * 3
