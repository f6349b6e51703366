"""dslc beside the real DVC: new content is read at most once by each, unchanged content by
neither, and dslc never relies on DVC's internal state.

DVC runs for real (the dev group installs it) in subprocesses, as dslc runs it; the
folder ``hashlog`` on PYTHONPATH logs every file either tool reads to hash
(``<tool> <path>`` per read), so the tests count reads instead of timing them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import age
from hashlog.sitecustomize import logged

from dslc import _dvc as dvc
from dslc import _fingerprint as fingerprint
from dslc import cli, data

HASHLOG = Path(__file__).with_name("hashlog")
pytestmark = pytest.mark.slow  # DVC's start-up: about a second a command


@pytest.fixture
def dvc_project(project: Path, tmp_path: Path, monkeypatch) -> Path:
    """The project under git and DVC (analytics off), DVC's site cache in tmp_path."""
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path / "dvc-site-cache"))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    dvc.run(project, "init", "-q")
    dvc.run(project, "config", "core.analytics", "false")
    return project


@pytest.fixture
def reads(tmp_path: Path, monkeypatch) -> Reads:
    """The files read to be hashed, by dslc here and by any process started from here."""
    log = tmp_path / "hash.log"
    log.touch()
    monkeypatch.setenv("HASH_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HASHLOG), os.getenv("PYTHONPATH", "")]))
    monkeypatch.setattr(fingerprint, "hash_file", logged(fingerprint.hash_file, "dslc"))
    return Reads(log)


class Reads:
    def __init__(self, log: Path) -> None:
        self.log = log

    def files(self) -> list[tuple[str, str]]:
        """(tool, path) of each read of a file since the last ``clear``, in order (DVC
        also hashes objects it keeps in memory: not files)."""
        lines = self.log.read_text(encoding="utf-8").splitlines()
        found = [line.partition(" ")[::2] for line in lines]
        return [(tool, path) for tool, path in found if "/memory:/" not in path]

    def of(self, path: Path) -> list[str]:
        """The tools that read ``path`` to hash it, in order."""
        return [tool for tool, where in self.files() if where == os.path.abspath(path)]

    def clear(self) -> None:
        self.log.write_text("")


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_dslc_data_add_reads_a_new_file_once_after_dvc(dvc_project: Path, reads) -> None:
    file = dvc_project / "data/raw/iris.csv"
    age(file)
    assert cli.main(["data", "add", "iris", "raw/iris.csv", "--replace"]) == 0
    assert reads.of(file) == ["dvc", "dslc"]  # dslc read the copy DVC put back
    assert (dvc_project / "data/raw/iris.csv.dvc").read_text().count(md5_of(file)) == 1
    reads.clear()
    assert data.fingerprint("iris") == sha256_of(file)
    assert dvc.file_md5(dvc_project, file) == md5_of(file)  # from iris.csv.dvc
    dvc.run(dvc_project, "status")
    assert reads.of(file) == []


def test_dvcs_state_is_not_dslcs_concern(dvc_project: Path, tmp_path: Path, reads) -> None:
    """A planted or broken DVC state changes nothing in dslc's fingerprints."""
    file = dvc_project / "data/raw/iris.csv"
    age(file)
    assert cli.main(["data", "add", "iris", "raw/iris.csv", "--replace"]) == 0
    before = data.fingerprint("iris")
    for database in (tmp_path / "dvc-site-cache").rglob("*.db"):
        database.write_bytes(b"planted" * 100)
    st = file.stat()
    file.chmod(0o644)
    file.write_text(file.read_text().replace("setosa", "SETOSA", 1))  # same size
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime
    reads.clear()
    after = data.fingerprint("iris")
    assert after != before and after == sha256_of(file)
    assert reads.of(file) == ["dslc"]
    assert fingerprint.fingerprint_path(file, None) == after


def test_file_md5_is_none_for_a_file_changed_since_dvc_recorded_it(dvc_project, reads):
    file = dvc_project / "data/raw/iris.csv"
    age(file)
    assert cli.main(["data", "add", "iris", "raw/iris.csv", "--replace"]) == 0
    assert dvc.file_md5(dvc_project, file) == md5_of(file)
    file.chmod(0o644)
    file.write_text(file.read_text() + "9,9,9,9,setosa\n")
    assert dvc.file_md5(dvc_project, file) is None  # the pointer's md5 names other content
    assert dvc.file_md5(dvc_project, dvc_project / "data/catalog.yml") is None


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


def test_stage_outputs_are_read_once_by_dvc_and_once_by_dslc(dvc_project, reads):
    (dvc_project / "dvc.yaml").write_text(STAGE.format(python=sys.executable))
    (dvc_project / "make.py").write_text(MAKE)
    catalog = dvc_project / "data/catalog.yml"
    catalog.write_text(catalog.read_text() + "  out:\n    location: processed/out.parquet\n")
    out = dvc_project / "data/processed/out.parquet"
    parts = [dvc_project / f"data/processed/parts/{n}.csv" for n in range(3)]

    dvc.run(dvc_project, "repro")
    for path in (out, *parts):  # data.save read none: DVC's commit rewrites them
        assert reads.of(path) == ["dvc"], path
    reads.clear()
    assert data.load("out").shape == (1000, 2)
    fp = data.fingerprint("out")
    assert yaml.safe_load(catalog.read_text())["datasets"]["out"]["fingerprint"] == fp
    assert data.fingerprint("processed/parts").startswith("sha256:")
    assert dvc.file_md5(dvc_project, out) == md5_of(out)  # from dvc.lock
    assert dvc.file_md5(dvc_project, parts[1]) == md5_of(parts[1])  # the folder's manifest
    for path in (out, *parts):
        assert reads.of(path) == ["dslc"], path
    reads.clear()
    assert "didn't change" in dvc.run(dvc_project, "repro")
    assert data.fingerprint("out") == fp and dvc.file_md5(dvc_project, out) == md5_of(out)
    assert reads.files() == []


def test_a_pull_checks_each_cache_file_of_a_folder_once(dvc_project: Path, tmp_path: Path, reads):
    folder = dvc_project / "data/raw/images"
    folder.mkdir()
    for n in range(3):
        (folder / f"{n}.bin").write_bytes(os.urandom(2048))
        age(folder / f"{n}.bin")
    dvc.run(dvc_project, "remote", "add", "--default", "storage", str(tmp_path / "remote"))
    assert cli.main(["data", "add", "images", "raw/images"]) == 0
    assert "pushed" in dvc.push(dvc_project)
    rotten = dvc.cache_file(dvc_project, md5_of(folder / "1.bin"))
    shutil.rmtree(folder)

    # Rotten behind DVC's back, and read-only as DVC leaves it: DVC itself would trust it.
    rotten.chmod(0o644)
    rotten.write_bytes(b"rotten")
    rotten.chmod(0o444)
    with pytest.raises(dvc.DvcError, match=r"corrupted .*data/ was left as it was") as err:
        dvc.pull(dvc_project)
    assert "data/raw/images/1.bin is corrupted" in str(err.value)
    assert not folder.exists()

    shutil.rmtree(dvc_project / ".dvc" / "cache")  # a new clone
    reads.clear()
    assert "1 output(s) restored" in dvc.pull(dvc_project)
    # Three cache files, one read each, by dslc; DVC read none of them.
    assert sorted(tool for tool, _ in reads.files()) == ["dslc"] * 3
    assert all("/.dvc/cache/files/md5/" in path for _, path in reads.files())
    assert cli.main(["data", "verify"]) == 0


def test_no_tag_key_holds_a_secret_value(dvc_project: Path, monkeypatch) -> None:
    """A file named after a secret's value: its md5 tag is not written (its key would
    carry the secret); a plain file's is."""
    pytest.importorskip("mlflow")
    from tracking_support import run_data

    from dslc import tracking

    secret = "Sup3r-Secret-Value"
    monkeypatch.setenv("PGPASSWORD", secret)
    raw = dvc_project / "data" / "raw"
    for name in (f"{secret}.csv", "plain.csv"):
        (raw / name).write_text("a,b\n1,2\n")
        dvc.run(dvc_project, "add", "-q", str(raw / name))
    with tracking.run("t") as run:
        data.load(raw / f"{secret}.csv")
        data.load(raw / "plain.csv")
    stored = run_data(run.id)
    keys = [*stored.data.tags, *stored.data.params, *stored.data.metrics, stored.info.run_name]
    assert not [key for key in keys if secret in key], keys
    assert f"{dvc.VERSION_TAG}data/raw/plain.csv" in stored.data.tags, "the control is tagged"


def test_snapshots_stay_read_only_through_dvc_add_and_pull(
    dvc_project: Path, tmp_path: Path, monkeypatch
) -> None:
    import sqlite3

    con = sqlite3.connect(dvc_project / "shop.db")
    con.execute("CREATE TABLE orders AS SELECT 1 AS id")
    con.commit()
    con.close()
    monkeypatch.setenv("SHOP_URL", f"sqlite:///{dvc_project / 'shop.db'}")
    catalog = "datasets:\n  orders:\n    connection: SHOP_URL\n    table: orders\n"
    (dvc_project / "data" / "catalog.yml").write_text(catalog, encoding="utf-8")
    dvc.run(dvc_project, "remote", "add", "--default", "storage", str(tmp_path / "remote"))
    snap = dvc_project / "data" / data.snapshot("orders").location
    assert snap.with_name(snap.name + ".dvc").is_file()  # dvc add put back a copy
    assert not snap.stat().st_mode & 0o222
    dvc.push(dvc_project)
    snap.unlink()
    assert cli.main(["data", "pull"]) == 0  # `make pull`: dvc checkout writes a new copy
    assert not snap.stat().st_mode & 0o222
    snap.chmod(0o644)  # as a kill during `dvc add` leaves it
    assert cli.main(["data", "pull"]) == 0
    assert not snap.stat().st_mode & 0o222
    assert cli.main(["data", "verify"]) == 0


def test_push_sends_everything_or_stops_in_one_line(dvc_project: Path, tmp_path: Path, capsys):
    remote = tmp_path / "remote"
    remote.mkdir()
    dvc.run(dvc_project, "remote", "add", "-d", "storage", str(remote))
    raw = dvc_project / "data" / "raw" / "a.csv"
    raw.write_text("a\n1\n")
    dvc.run(dvc_project, "add", "-q", str(raw))
    cached = dvc.cache_file(dvc_project, hashlib.md5(raw.read_bytes()).hexdigest())

    def push() -> tuple[int, str]:
        code = cli.main(["data", "push"])
        return code, capsys.readouterr().err

    cached.chmod(0o644)
    cached.write_text("not what was added")  # a cache object gone bad
    code, err = push()
    assert code == 1 and err.count("\n") == 1 and "is corrupted" in err, err
    assert not [p for p in remote.rglob("*") if p.is_file()], "nothing reached the remote"

    cached.unlink()  # mended as the message says
    dvc.run(dvc_project, "commit", "--force", "-q")
    assert push()[0] == 0
    assert (remote / "files" / "md5" / cached.parent.name / cached.name).is_file()

    raw.write_text("a\n2\n")  # changed outside DVC: not what the .dvc file records
    code, err = push()
    assert code == 1 and "data/raw/a.csv is not the version" in err, err


def test_pull_from_a_remote_that_is_a_file_says_so(dvc_project: Path, tmp_path: Path, capsys):
    (tmp_path / "remote").write_text("")
    dvc.run(dvc_project, "remote", "add", "-d", "storage", str(tmp_path / "remote"))
    assert cli.main(["data", "pull"]) == 1
    err = capsys.readouterr().err
    assert "a file, not a folder" in err and err.count("\n") == 1, err
