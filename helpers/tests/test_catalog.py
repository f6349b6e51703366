from __future__ import annotations

from pathlib import Path

import pytest

from dslc import catalog
from dslc.catalog import DatasetEntry
from dslc.errors import CatalogError


def _write(project: Path, text: str) -> Path:
    f = project / "data" / "catalog.yml"
    f.write_text(text, encoding="utf-8")
    return f


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("datasets: [unclosed\n", "invalid YAML at line"),
        ("- a\n- b\n", "single 'datasets:' mapping"),
        ("datasets: 3\n", "'datasets' must map"),
        ("datasets:\n  iris: raw/iris.csv\n", "dataset 'iris': expected a mapping"),
        ("datasets:\n  iris:\n    format: csv\n", "'location' is required"),
        ("datasets:\n  iris:\n    location: a.csv\n    colour: red\n", "unknown key"),
        ("datasets:\n  iris:\n    location: a.csv\n    format: hdf\n", "unknown format 'hdf'"),
        ("datasets:\n  iris:\n    location: a.csv\n    parents: x\n", "list of dataset names"),
        ("datasets:\n  iris:\n    location: a.csv\n    parents: [x]\n", "parent 'x' is not"),
        ("datasets:\n  iris:\n    location: a.csv\n    load_options: 1\n", "'load_options'"),
        ("datasets:\n  iris:\n    location: a.csv\n    fingerprint: abc\n", "sha256:<hex>"),
        ("datasets:\n  iris:\n    location: a.csv\n    description: 3\n", "'description'"),
        ("datasets:\n  my.data:\n    location: a.csv\n", "invalid dataset name"),
    ],
)
def test_malformed_catalog(project: Path, text: str, match: str) -> None:
    f = _write(project, text)
    with pytest.raises(CatalogError, match=match) as err:
        catalog.read(f)
    msg = str(err.value)
    assert "\n" not in msg and str(f) in msg


def test_empty_and_absent_catalogs(project: Path) -> None:
    assert catalog.read(_write(project, "# nothing yet\n")) == {}
    assert catalog.read(_write(project, "datasets:\n")) == {}
    assert catalog.read(project / "data" / "none.yml") == {}


def test_valid_entry_and_aliases(project: Path) -> None:
    f = _write(
        project,
        "datasets:\n  iris:\n    location: raw/iris.csv\n  book:\n    location: x.xlsx\n"
        "    format: XLSX\n    parents: [iris]\n    fingerprint: sha256:ab12\n",
    )
    entries = catalog.read(f)
    assert entries["book"] == DatasetEntry(
        name="book", location="x.xlsx", format="excel", parents=("iris",), fingerprint="sha256:ab12"
    )


def test_write_round_trip_keeps_header(project: Path) -> None:
    f = project / "data" / "catalog.yml"
    entries = catalog.read(f)
    entries["copy"] = DatasetEntry(name="copy", location="interim/c.csv", parents=("iris",))
    catalog.write(f, entries)
    text = f.read_text()
    assert text.startswith("# Data catalog")
    assert catalog.read(f) == entries
    assert not [p for p in f.parent.iterdir() if p.name.startswith(".dslc-tmp")]


def test_check_name() -> None:
    assert catalog.check_name("iris_v2-clean") == "iris_v2-clean"
    for bad in ("", "2iris", "a/b", "a.b", "a b"):
        with pytest.raises(CatalogError):
            catalog.check_name(bad)
