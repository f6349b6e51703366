from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from opens import watch

from dslc import data
from dslc.errors import (
    CatalogError,
    DatasetNotFoundError,
    DslcError,
    FormatError,
    LocationError,
    RawDataWriteError,
    UnsafePathError,
)

FRAME = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_load_relative_path_and_catalog_name(project: Path) -> None:
    by_path = data.load("raw/iris.csv")
    by_name = data.load("iris")
    assert list(by_path.columns) == ["sepal_length", "sepal_width", "species"]
    pd.testing.assert_frame_equal(by_path, by_name)


def test_load_from_subfolder_and_absolute_inside(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "notebooks")
    assert len(data.load("raw/iris.csv")) == 3
    assert len(data.load(project / "data" / "raw" / "iris.csv")) == 3
    assert len(data.load(str(project / "data" / "raw" / "iris.csv"))) == 3


@pytest.mark.parametrize(
    "name", ["t.csv", "t.csv.gz", "t.parquet", "t.json", "t.feather", "t.xlsx", "t.pkl"]
)
def test_round_trip_frame_formats(project: Path, name: str) -> None:
    written = data.save(FRAME, f"interim/{name}")
    assert written == data.path(f"interim/{name}") and written.is_file()
    pd.testing.assert_frame_equal(data.load(f"interim/{name}"), FRAME)


@dataclass
class Model:
    slope: float

    def predict(self, x: float) -> float:
        return self.slope * x


def test_pickle_and_joblib_for_objects(project: Path) -> None:
    names = ["model.pkl", "model.pickle"]
    if importlib.util.find_spec("joblib") is not None:
        names.append("model.joblib")
    for name in names:
        data.save(Model(2.0), f"../models/{name}")
        loaded = data.load(project / "models" / name)
        assert loaded.predict(2.0) == pytest.approx(4.0)


def test_joblib_missing_is_clear(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "joblib" else real(n, *a)
    )
    with pytest.raises(FormatError, match="needs the joblib package"):
        data.save({"a": 1}, "interim/x.joblib")
    assert not (project / "data" / "interim" / "x.joblib").exists()


def test_unknown_format_lists_supported(project: Path) -> None:
    with pytest.raises(FormatError, match="supported formats: csv, parquet") as err:
        data.save(FRAME, "interim/table.xyz")
    assert "\n" not in str(err.value)
    with pytest.raises(FormatError, match="unknown format 'hdf'"):
        data.load("raw/iris.csv", format="hdf")
    assert _files(project / "data" / "interim") == []


def test_format_override(project: Path) -> None:
    data.save(FRAME, "interim/table.dat", format="csv")
    pd.testing.assert_frame_equal(data.load("interim/table.dat", format="csv"), FRAME)


def test_non_frame_to_table_format_writes_nothing(project: Path) -> None:
    with pytest.raises(FormatError, match=r"save other objects as \.pkl"):
        data.save({"a": 1}, "interim/new/x.parquet")
    assert not (project / "data" / "interim" / "new").exists()


def test_missing_file_and_unknown_name(project: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="not found at"):
        data.load("raw/nope.csv")
    with pytest.raises(DatasetNotFoundError, match="dslc data add nope"):
        data.load("nope")


def test_path_escaping_the_project(project: Path) -> None:
    for bad in ("../../etc/passwd.csv", "/etc/passwd.csv", "../../../x.csv"):
        with pytest.raises(UnsafePathError, match="outside the project"):
            data.load(bad)
        with pytest.raises(UnsafePathError):
            data.save(FRAME, bad)
    (project / "data" / "catalog.yml").write_text(
        "datasets:\n  evil:\n    location: ../../secret.csv\n", encoding="utf-8"
    )
    with pytest.raises(UnsafePathError):
        data.load("evil")


def test_raw_is_immutable_unless_forced(project: Path) -> None:
    before = (project / "data" / "raw" / "iris.csv").read_bytes()
    with pytest.raises(RawDataWriteError) as err:
        data.save(FRAME, "raw/iris.csv")
    assert "interim" in str(err.value) and "force=True" in str(err.value)
    with pytest.raises(RawDataWriteError):
        data.save(FRAME, "iris")  # through the catalog too
    with pytest.raises(RawDataWriteError):
        data.save(FRAME, "raw/sub/new.csv")
    assert (project / "data" / "raw" / "iris.csv").read_bytes() == before
    assert _files(project / "data" / "raw") == ["iris.csv"]
    data.save(FRAME, "raw/forced.csv", force=True)
    assert (project / "data" / "raw" / "forced.csv").exists()


def test_save_through_catalog_records_fingerprint(project: Path) -> None:
    cat = project / "data" / "catalog.yml"
    cat.write_text(
        cat.read_text() + "  features:\n    location: processed/features.parquet\n"
        "    parents: [iris]\n",
        encoding="utf-8",
    )
    data.save(FRAME, "features")
    doc = yaml.safe_load(cat.read_text())
    fp = doc["datasets"]["features"]["fingerprint"]
    assert fp == data.fingerprint("processed/features.parquet")
    assert doc["datasets"]["features"]["parents"] == ["iris"]
    assert doc["datasets"]["iris"]["location"] == "raw/iris.csv"  # others preserved
    assert cat.read_text().startswith("# Data catalog")  # header comment kept
    pd.testing.assert_frame_equal(data.load("features"), FRAME)


def test_a_dataset_just_saved_is_read_once_for_its_fingerprint(project, request) -> None:
    """dslc wrote the file whole: its fresh timestamps need not make the next step read
    it again (the racy window concerns writers that may still be writing)."""
    cat = project / "data" / "catalog.yml"
    cat.write_text(cat.read_text() + "  features:\n    location: processed/features.parquet\n")
    reads = watch(request, project / "data" / "processed" / "features.parquet")
    data.save(FRAME, "features")
    assert (
        data.fingerprint("features")
        == yaml.safe_load(cat.read_text())["datasets"]["features"]["fingerprint"]
    )
    assert len(reads) == 1


def test_catalog_options_are_used_and_overridable(project: Path) -> None:
    (project / "data" / "catalog.yml").write_text(
        "datasets:\n  semi:\n    location: interim/semi.txt\n    format: csv\n"
        "    load_options: {sep: ';'}\n    save_options: {sep: ';'}\n",
        encoding="utf-8",
    )
    data.save(FRAME, "semi")
    assert (project / "data" / "interim" / "semi.txt").read_text().startswith("x;y")
    pd.testing.assert_frame_equal(data.load("semi"), FRAME)
    assert list(data.load("semi", sep=",").columns) == ["x;y"]


def test_malformed_catalog_is_catalog_error(project: Path) -> None:
    (project / "data" / "catalog.yml").write_text("datasets: [oops\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="invalid YAML"):
        data.load("iris")


def test_path_function(project: Path) -> None:
    assert data.path("iris") == project / "data" / "raw" / "iris.csv"
    assert data.path("processed/x.parquet") == project / "data" / "processed" / "x.parquet"
    assert data.path("processed/parts") == project / "data" / "processed" / "parts"  # a folder
    with pytest.raises(LocationError, match="not on this machine") as err:
        data.path("memory://bucket/x.csv")
    assert "\n" not in str(err.value)
    assert "iris" in data.entries()


def test_save_into_folder_path_is_refused(project: Path) -> None:
    (project / "data" / "interim" / "d.csv").mkdir()
    with pytest.raises(DslcError, match="is a folder"):
        data.save(FRAME, "interim/d.csv")


def test_no_temp_file_left_on_writer_error(project: Path) -> None:
    target = project / "data" / "interim" / "t.csv"
    data.save(FRAME, "interim/t.csv")
    before = target.read_bytes()
    with pytest.raises(TypeError):
        data.save(FRAME, "interim/t.csv", not_an_option=1)
    assert target.read_bytes() == before
    assert _files(target.parent) == ["t.csv"]


def test_fsspec_url_round_trip(project: Path) -> None:
    data.save(FRAME, "memory://dslc-test/t.csv")
    pd.testing.assert_frame_equal(data.load("memory://dslc-test/t.csv"), FRAME)
    assert data.fingerprint("memory://dslc-test/t.csv").startswith("sha256:")


def _sha(path: Path) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _features_entry(project: Path) -> Path:
    cat = project / "data" / "catalog.yml"
    cat.write_text(cat.read_text() + "  features:\n    location: interim/features.csv\n")
    return project / "data" / "interim" / "features.csv"


def test_recorded_fingerprint_is_of_the_file_on_disk(project: Path) -> None:
    """Another writer's file lands between our rename and our catalog update: we hold the
    catalog's lock (a file under .dslc) while a thread saves, and replace its file then."""
    import threading

    from filelock import FileLock

    dest = _features_entry(project)
    other = project / "data" / "interim" / "other.csv"
    pd.DataFrame({"x": [9, 9, 9]}).to_csv(other, index=False)
    with FileLock(project / ".dslc" / "catalog.lock"):
        saver = threading.Thread(target=data.save, args=(FRAME, "features"))
        saver.start()
        while not dest.exists() and saver.is_alive():  # saved, now waiting for the lock
            saver.join(0.01)
        other.replace(dest)
    saver.join(30)
    assert not saver.is_alive()
    assert pd.read_csv(dest)["x"].tolist() == [9, 9, 9]
    assert data.entries()["features"].fingerprint == _sha(dest)


def test_save_returns_the_path_it_wrote_none_for_a_remote_url(project: Path) -> None:
    assert data.save(FRAME, "iris", force=True) == data.path("iris")
    assert data.save(FRAME, "memory://dslc-test/r.csv") is None  # a remote URL has no path


_SAVER = """
import sys
import pandas as pd
from dslc import data
me = int(sys.argv[1])
for i in range(int(sys.argv[2])):
    data.save(pd.DataFrame({"who": [me] * (1 + i % 7), "i": [i] * (1 + i % 7)}), "features")
"""


@pytest.mark.slow
def test_concurrent_saves_leave_the_hash_of_the_file_on_disk(project: Path) -> None:
    import subprocess
    import sys

    dest = _features_entry(project)
    procs = [
        subprocess.Popen([sys.executable, "-c", _SAVER, str(n), "25"], cwd=project)
        for n in range(3)
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0, 0]
    assert data.entries()["features"].fingerprint == _sha(dest)
