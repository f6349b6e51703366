"""Guards by filesystem, not by spelling: every way of naming a local file gets the same checks."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dslc import _locate as locate
from dslc import data
from dslc._secrets import scrub_urls
from dslc.errors import DatasetNotFoundError, LocationError, RawDataWriteError, UnsafePathError

FRAME = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the project, with a CSV and a zip archive holding it."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.csv").write_text("password\nhunter2\n")
    with zipfile.ZipFile(folder / "a.zip", "w") as z:
        z.write(folder / "secret.csv", "secret.csv")
    return folder


def _local_urls(path: Path) -> list[str]:
    """Ways to name the local file ``path`` through fsspec that dslc opens."""
    return [f"file://{path.as_posix()}", f"local://{path.as_posix()}"]


def _wrapped_urls(path: Path) -> list[str]:
    """Ways to reach the local file ``path`` through another filesystem (refused)."""
    p, name, parent = path.as_posix(), path.name, path.parent.as_posix()
    return [
        f"simplecache::file://{p}",
        f"filecache::local://{p}",
        f"blockcache::{p}",
        f"simplecache::filecache::file://{p}",
        f"dir://{name}::file://{parent}",
        f"simplecache::dir://{name}::local://{parent}",
        f"zip://{name}::file://{parent}/a.zip",
        f"zip://{name}::{parent}/a.zip",
        f"tar://{name}::file://{parent}/a.tar",
    ]


def test_every_local_spelling_outside_the_project_is_refused(project: Path, outside: Path) -> None:
    target = outside / "secret.csv"
    for url in [*_local_urls(target), f"file://{outside.as_posix()}/../outside/secret.csv"]:
        with pytest.raises(UnsafePathError, match="outside the project") as err:
            data.load(url)
        assert "\n" not in str(err.value)
        with pytest.raises(UnsafePathError):
            data.save(FRAME, url.replace("secret.csv", "new.csv"))
        with pytest.raises(UnsafePathError):
            data.fingerprint(url)
    assert sorted(p.name for p in outside.iterdir()) == ["a.zip", "secret.csv"]


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_urls_through_another_filesystem_are_refused(
    project: Path, outside: Path, where: str
) -> None:
    """Caches, archives, dir:// and chains read from a place dslc would have to follow layer
    by layer: refused in one line wherever they point, and nothing is read or written."""
    folder = outside if where == "outside" else project / "data" / "raw"
    before = sorted(p.name for p in folder.iterdir())
    for url in _wrapped_urls(folder / "secret.csv"):
        with pytest.raises(LocationError) as err:
            data.load(url, format="csv")
        assert "\n" not in str(err.value)
        with pytest.raises(LocationError):
            data.save(FRAME, url, format="csv", force=True)
        with pytest.raises(LocationError):
            data.fingerprint(url)
    # The inner filesystem given as options (what a catalog's load_options could say).
    for options in (
        {"path": outside.as_posix(), "target_protocol": "file"},
        {"protocol": "file"},
        {"fo": (outside / "a.zip").as_posix()},
    ):
        with pytest.raises(LocationError, match="storage option"):
            data.load("memory://dslc-paths/secret.csv", format="csv", storage_options=options)
    assert sorted(p.name for p in folder.iterdir()) == before
    # An IPv6 host's colons are not a chain.
    with pytest.raises(LocationError, match="cannot use 'http://\\[::1\\]"):
        data.load("http://[::1]:9/x.csv", storage_options={"fo": "x"})


def test_catalog_entries_cannot_reach_outside(project: Path, outside: Path) -> None:
    secret = (outside / "secret.csv").as_posix()
    (project / "data" / "catalog.yml").write_text(
        "datasets:\n"
        f"  a:\n    location: local://{secret}\n"
        f"  b:\n    location: simplecache::file://{secret}\n"
        "  c:\n    location: dir://secret.csv\n    format: csv\n"
        f"    load_options: {{storage_options: {{path: {outside.as_posix()}, "
        "target_protocol: file}}\n",
        encoding="utf-8",
    )
    with pytest.raises(UnsafePathError):
        data.load("a")
    for name in ("b", "c"):
        with pytest.raises(LocationError):
            data.load(name)


def test_opaque_and_unknown_protocols_are_one_line(project: Path) -> None:
    for url, match in (
        ("reference://", "cannot check where 'reference'"),
        ("git://x.csv", "cannot"),  # refused as opaque, or for want of pygit2
        ("nope://x.csv", "Protocol not known"),
        ("FILE:///etc/passwd.csv", "Protocol not known"),
        ("s3://bucket/x.csv", "cannot use"),  # no s3fs installed: fsspec names it
    ):
        with pytest.raises(LocationError, match=match) as err:
            data.load(url, format="csv")
        assert "\n" not in str(err.value)


def test_local_urls_inside_the_project_behave_like_paths(project: Path) -> None:
    plain = data.load("raw/iris.csv")
    raw = project / "data" / "raw" / "iris.csv"
    for url in _local_urls(raw):
        pd.testing.assert_frame_equal(data.load(url, format="csv"), plain)
        assert data.path(url) == raw  # the file itself, not a URL
        assert data.fingerprint(url) == data.fingerprint("raw/iris.csv")
    # Relative file:// URLs are relative to the working directory, as fsspec reads them.
    pd.testing.assert_frame_equal(data.load("file://data/raw/iris.csv"), plain)


def test_the_file_dslc_checks_is_the_file_fsspec_opens(project: Path) -> None:
    """If fsspec ever reads a local URL differently, this fails before the guards check
    the wrong file."""
    raw = project / "data" / "raw"
    (raw / "other.csv").write_text("x\n1\n")
    for url in [*_local_urls(raw / "iris.csv"), *_local_urls(raw / "other.csv")]:
        target = locate.resolve(url, need_format=False)
        assert target.local is not None, url
        with fsspec.open(url, "rb") as fh:
            assert fh.read() == target.local.read_bytes(), url


def test_raw_data_is_immutable_whatever_the_spelling(project: Path) -> None:
    raw = project / "data" / "raw"
    before = (raw / "iris.csv").read_bytes()
    for url in _local_urls(raw / "iris.csv"):
        with pytest.raises(RawDataWriteError, match="immutable"):
            data.save(FRAME, url, format="csv")
    assert (raw / "iris.csv").read_bytes() == before
    assert sorted(p.name for p in raw.iterdir()) == ["iris.csv"]
    # Forced, a local URL is written atomically like a path.
    data.save(FRAME, f"local://{raw.as_posix()}/forced.csv", force=True)
    pd.testing.assert_frame_equal(data.load("raw/forced.csv"), FRAME)


def test_nul_characters_are_refused(project: Path) -> None:
    for bad in ("raw/ir\x00is.csv", "file:///tmp/x\x00.csv", "local://a\x00b.csv"):
        with pytest.raises(LocationError, match="NUL"):
            data.load(bad)
        with pytest.raises(LocationError, match="NUL"):
            data.save(FRAME, bad)
        with pytest.raises(LocationError, match="NUL"):
            data.fingerprint(bad)


def test_credentials_in_urls_never_reach_messages(project: Path) -> None:
    with pytest.raises(LocationError) as err:
        data.load("nope://user:hunter2@host/x.csv")
    assert "hunter2" not in str(err.value) and "***@" in str(err.value)
    assert scrub_urls("a http://u:p@h/x and s3://k:s@b/y") == "a http://***@h/x and s3://***@b/y"


_SEGMENTS = st.lists(
    st.sampled_from(["..", ".", "", "data", "raw", "x.csv", "a b", "é", "~", "%2e%2e", "..."]),
    min_size=0,
    max_size=8,
)
_PREFIXES = st.sampled_from(["", "/", "file://", "file:///", "local://"])


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(prefix=_PREFIXES, segments=_SEGMENTS, absolute=st.booleans())
def test_resolved_local_paths_stay_inside_and_match_fsspec(
    project: Path, prefix: str, segments: list[str], absolute: bool
) -> None:
    rel = "/".join(segments) or "x.csv"
    text = prefix + (f"{project.as_posix()}/{rel}" if absolute else rel)
    try:
        target = locate.resolve(text, need_format=False)
    except (UnsafePathError, LocationError, DatasetNotFoundError):
        return  # refused, or a bare word taken as a catalog name
    if target.local is None:
        return  # not local (cannot happen for these prefixes, but not this test's point)
    assert target.local.is_relative_to(project)
    if locate.is_url(text):
        # The path dslc checks is the one fsspec would open.
        _, fs_path = fsspec.core.url_to_fs(text)
        assert Path(os.path.normpath(fs_path)) == target.local
