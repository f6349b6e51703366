from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from conftest import age
from opens import watch

from dslc import _fingerprint as fpmod
from dslc import data


def test_full_content_sha256(project: Path) -> None:
    f = project / "data" / "raw" / "iris.csv"
    expected = "sha256:" + hashlib.sha256(f.read_bytes()).hexdigest()
    assert data.fingerprint("raw/iris.csv") == expected
    assert data.fingerprint("iris") == expected


def test_large_file_read_in_chunks(project: Path) -> None:
    f = project / "data" / "external" / "blob.bin"
    payload = os.urandom(3 * fpmod.CHUNK + 123)
    f.write_bytes(payload)
    seen: list[int] = []
    got = fpmod.fingerprint_path(f, None, seen.append)
    assert got == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert sum(seen) == len(payload) and max(seen) <= fpmod.CHUNK


def test_cache_hit_only_stats(project: Path, request) -> None:
    f = project / "data" / "raw" / "iris.csv"
    age(f)
    calls = watch(request, f)
    first = data.fingerprint("raw/iris.csv")
    assert len(calls) == 1
    assert (project / ".dslc" / "fingerprints.json").exists()
    assert data.fingerprint("raw/iris.csv") == first
    assert len(calls) == 1


def test_change_invalidates_cache(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = project / "data" / "raw" / "iris.csv"
    age(f, 20)
    first = data.fingerprint("iris")
    text = f.read_text()
    f.write_text(text.replace("5.1", "5.2"))  # same size, new mtime
    age(f, 10)
    assert data.fingerprint("iris") != first


def test_a_file_written_just_now_is_hashed_once_its_tick_has_passed(project: Path, request) -> None:
    # A write in the same timestamp tick as the hashing could keep size and mtime: dslc
    # waits until the file's mtime is 50 ms old, so a later write shows, then caches it.
    f = project / "data" / "interim" / "fresh.csv"
    f.write_text("a\n1\n")
    calls = watch(request, f)
    data.fingerprint("interim/fresh.csv")
    assert calls[0][1] - f.stat().st_mtime_ns >= 50_000_000
    data.fingerprint("interim/fresh.csv")
    assert len(calls) == 1


def test_a_recent_file_with_coarse_timestamps_is_not_cached(project: Path, request) -> None:
    # On a filesystem with 1-2 s timestamps (FAT, some NFS) waiting is too slow: such
    # "racy" files are hashed again next time rather than trusted.
    f = project / "data" / "interim" / "fresh.csv"
    f.write_text("a\n1\n")
    now = time.time_ns() // 1_000_000_000 * 1_000_000_000
    os.utime(f, ns=(now, now))
    calls = watch(request, f)
    data.fingerprint("interim/fresh.csv")
    data.fingerprint("interim/fresh.csv")
    assert len(calls) == 2


def test_corrupt_cache_is_ignored(project: Path) -> None:
    state = project / ".dslc"
    state.mkdir()
    (state / "fingerprints.json").write_text("{not json")
    age(project / "data" / "raw" / "iris.csv")
    assert data.fingerprint("iris").startswith("sha256:")
    doc = json.loads((state / "fingerprints.json").read_text())
    assert list(doc) == ["sha256-v3"] and len(doc["sha256-v3"]) == 1


def test_directory_fingerprint(project: Path) -> None:
    d = project / "data" / "processed" / "parts"
    (d / "sub").mkdir(parents=True)
    (d / "a.csv").write_text("1")
    (d / "sub" / "b.csv").write_text("2")
    first = data.fingerprint("processed/parts")
    assert first == data.fingerprint(d)
    (d / "sub" / "b.csv").rename(d / "sub" / "c.csv")  # same content, new name
    assert data.fingerprint(d) != first
    (d / "sub" / "c.csv").rename(d / "sub" / "b.csv")
    assert data.fingerprint(d) == first
    (d / "a.csv").write_text("3")
    assert data.fingerprint(d) != first


def test_missing_file(project: Path) -> None:
    from dslc.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError):
        data.fingerprint("raw/absent.bin")


def test_a_remote_file_is_read_every_time(tmp_path: Path) -> None:
    import fsspec

    for content in (b"abc", b"xyz"):  # same size, rewritten: the new content's fingerprint
        with fsspec.open("memory://fp/x.bin", "wb") as fh:
            fh.write(content)
        got = fpmod.fingerprint_url("memory://fp/x.bin")
        assert got == "sha256:" + hashlib.sha256(content).hexdigest()


def test_special_files_are_refused_not_read(project: Path) -> None:
    import socket

    from dslc.errors import SpecialFileError

    d = project / "data" / "processed" / "parts"
    d.mkdir(parents=True)
    (d / "a.csv").write_text("1")
    specials = {"fifo": lambda p: os.mkfifo(p), "device": lambda p: p.symlink_to("/dev/zero")}
    for kind, make in specials.items():
        make(d / kind)
        for what in (d, d / kind):  # inside a folder dataset, or named directly
            with pytest.raises(SpecialFileError, match="not a data file") as err:
                fpmod.fingerprint_path(what, None)
            assert str(d / kind) in str(err.value) and "\n" not in str(err.value)
        (d / kind).unlink()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(d / "sock"))
        with pytest.raises(SpecialFileError, match="a socket"):
            fpmod.fingerprint_path(d, None)
    finally:
        sock.close()
        (d / "sock").unlink()
    (d / "dangling").symlink_to(d / "nowhere")
    with pytest.raises(SpecialFileError, match="broken symbolic link"):
        fpmod.fingerprint_path(d, None)


def test_temporary_files_of_writes_are_not_part_of_a_folder(project: Path) -> None:
    d = project / "data" / "processed" / "parts"
    d.mkdir(parents=True)
    (d / "a.csv").write_text("1")
    first = data.fingerprint(d)
    (d / ".dslc-tmp-00000000-1-000000000000-b.csv").write_text("half written")
    assert data.fingerprint(d) == first


def test_content_changed_behind_restored_mtime_is_seen(project: Path) -> None:
    f = project / "data" / "raw" / "iris.csv"
    age(f)
    cache = project / ".dslc" / "fingerprints.json"
    first = fpmod.fingerprint_path(f, cache)
    st = f.stat()
    f.write_text(f.read_text().replace("5.1", "5.2"))  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # `touch -r`
    assert f.stat().st_mtime_ns == st.st_mtime_ns and f.stat().st_size == st.st_size
    assert fpmod.fingerprint_path(f, cache) != first  # the ctime gives it away


def test_trust_cache_false_rehashes(project: Path, request) -> None:
    f = project / "data" / "raw" / "iris.csv"
    age(f)
    cache = project / ".dslc" / "fingerprints.json"
    calls = watch(request, f)
    fpmod.fingerprint_path(f, cache)
    fpmod.fingerprint_path(f, cache)
    assert len(calls) == 1
    fpmod.fingerprint_path(f, cache, trust_cache=False)
    assert len(calls) == 2
