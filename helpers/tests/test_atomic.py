"""Atomic writes, and the clean-up of temporary files left by writers that were killed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dslc import _atomic as atomic
from dslc import data


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # reaped: no such process now (until the number is reused)


def _temp(folder: Path, host: str, pid: int, name: str = "x.csv", age_s: float = 0) -> Path:
    p = folder / f"{atomic.TMP_PREFIX}{host}-{pid}-{os.urandom(6).hex()}-{name}"
    p.write_bytes(b"partial" * 1000)
    if age_s:
        old = time.time() - age_s
        os.utime(p, (old, old))
    return p


def test_dead_writers_files_are_removed_live_ones_kept(project: Path) -> None:
    folder = project / "data" / "interim"
    me = atomic.host_tag()
    dead = _temp(folder, me, _dead_pid())
    live = _temp(folder, me, os.getpid())
    parent = _temp(folder, me, os.getppid(), age_s=10 * 24 * 3600)  # old but alive: kept
    elsewhere = _temp(folder, "0badc0de", 12345, age_s=30 * 24 * 3600)  # its process unseen
    odd = folder / f"{atomic.TMP_PREFIX}not-ours.csv"
    odd.write_text("?")
    data.save(pd.DataFrame({"a": [1]}), "interim/t.csv")
    left = set(folder.iterdir())
    assert dead not in left
    assert {live, parent, elsewhere, odd} <= left
    assert folder / "t.csv" in left


def test_long_target_names_still_get_a_temporary_name(project: Path) -> None:
    name = "n" * 240 + ".csv.gz"
    data.save(pd.DataFrame({"a": [1, 2]}), f"interim/{name}")
    assert pd.read_csv(project / "data" / "interim" / name)["a"].tolist() == [1, 2]
    tmp = atomic.temp_path(project / name)
    assert len(tmp.name.encode()) <= 255 and tmp.name.endswith(".csv.gz")


def test_no_overwrite_is_decided_by_the_filesystem(tmp_path: Path) -> None:
    target = tmp_path / "snap.parquet"
    target.write_text("first")
    with pytest.raises(FileExistsError), atomic.atomic_path(target, overwrite=False) as tmp:
        tmp.write_text("second")
    assert target.read_text() == "first"
    assert list(tmp_path.iterdir()) == [target]


_KILLED_WRITER = """
import numpy as np, pandas as pd
from dslc import data
n = 4_000_000
df = pd.DataFrame({"a": np.arange(n), "b": np.random.default_rng(0).random(n)})
data.save(df, "interim/big.csv")
"""


@pytest.mark.slow
def test_killed_writer_leaves_previous_file_and_its_leftover_is_cleaned(project: Path) -> None:
    import signal

    target = project / "data" / "interim" / "big.csv"
    frame = pd.DataFrame({"x": [1, 2, 3]})
    data.save(frame, "interim/big.csv")
    before = target.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER], cwd=project)
    try:
        deadline = time.monotonic() + 120
        partial: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None:
            partial = [p for p in target.parent.glob(".dslc-tmp-*") if p.stat().st_size > 1 << 20]
            if partial:
                break
            time.sleep(0.01)
        assert partial, "the writer never produced a partial temporary file"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == before  # the previous file is whole
    pd.testing.assert_frame_equal(data.load("interim/big.csv"), frame)
    assert partial[0].exists()  # the dead writer could not clean up after itself...
    data.save(frame, "interim/other.csv")
    assert not partial[0].exists()  # ...the next write in the folder did
