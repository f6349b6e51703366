from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import age
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dslc import _catalog as catalog
from dslc._catalog import DatasetEntry
from dslc.errors import CatalogError


def _write(project: Path, text: str) -> Path:
    f = project / "data" / "catalog.yml"
    f.write_text(text, encoding="utf-8")
    return f


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("datasets: [unclosed\n", "invalid YAML at line"),
        ("- a\n- b\n", "a 'datasets:' mapping"),
        ("datasets: 3\n", "a 'datasets:' mapping"),
        ("datasets:\n  iris: raw/iris.csv\n", "dataset 'iris': expected a mapping"),
        ("datasets:\n  iris:\n    format: csv\n", "'location' is required"),
        ("datasets:\n  iris:\n    location: a.csv\n    colour: red\n", "unknown key"),
        ("datasets:\n  iris:\n    location: a.csv\n    connection: X\n", "unknown key 'location'"),
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


# --------------------------------------------------------------------------- hostile input

_NEST = 100_000  # far beyond the C stack libyaml's own composer would need


@pytest.mark.parametrize(
    "text",
    [
        "datasets: " + "[" * _NEST + "]" * _NEST,
        "datasets: " + "{a: " * _NEST + "}" * _NEST,
        "datasets:\n  x:\n    location: a.csv\n    load_options: " + "[" * _NEST,
        "datasets:\n" + "".join(" " * i + "a:\n" for i in range(1, 200)),
        "datasets: " + "- " * 5_000 + "x\n",
    ],
    ids=["flow-lists", "flow-maps", "unclosed-in-options", "block-indent", "compact-lists"],
)
def test_deep_nesting_is_one_line(project: Path, text: str) -> None:
    f = _write(project, text)
    with pytest.raises(CatalogError) as err:
        catalog.read(f)
    msg = str(err.value)
    assert "\n" not in msg and str(f) in msg
    assert "nested deeper than" in msg or "invalid YAML" in msg


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("datasets:\n  a:\n    location: a.csv\n  a:\n    location: b.csv\n", "duplicate key 'a'"),
        ("datasets:\n  a:\n    location: a.csv\n    location: b.csv\n", "duplicate key"),
        ("datasets: {}\ndatasets:\n  a: {location: a.csv}\n", "duplicate key 'datasets'"),
        ("datasets:\n  a: &x {location: a.csv}\n  b: *x\n", "aliases"),
        ("datasets:\n  a: &x {location: a.csv}\n  b:\n    <<: *x\n", "aliases"),
        ("datasets:\n  b:\n    <<: {location: a.csv}\n", "tag 'tag:yaml.org,2002:merge'"),
        (
            "x: &a [1, 1]\ny: &b [*a, *a]\nz: &c [*b, *b]\ndatasets: {}\n",  # billion laughs
            "aliases",
        ),
    ],
)
def test_duplicates_aliases_and_merges_are_refused(project: Path, text: str, match: str) -> None:
    f = _write(project, text)
    with pytest.raises(CatalogError, match=match) as err:
        catalog.read(f)
    assert "\n" not in str(err.value) and "at line" in str(err.value)


@pytest.mark.parametrize(
    ("parents", "cycle"),
    [
        ({"a": ["a"]}, "a -> a"),
        ({"a": ["b"], "b": ["a"]}, "a -> b -> a"),
        ({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}, "a -> b -> c -> a"),
        ({"a": [], "b": ["a", "c"], "c": ["b"]}, "b -> c -> b"),
    ],
)
def test_parent_cycles_are_refused(
    project: Path, parents: dict[str, list[str]], cycle: str
) -> None:
    body = "".join(
        f"  {n}:\n    location: {n}.csv\n    parents: [{', '.join(ps)}]\n"
        for n, ps in parents.items()
    )
    with pytest.raises(CatalogError, match="parents form a cycle: " + cycle.replace(">", r"\>")):
        catalog.read(_write(project, "datasets:\n" + body))


def test_long_parent_chain_is_fine(project: Path) -> None:
    n = 3_000  # deeper than Python's recursion limit: the check must not recurse
    body = "".join(
        f"  d{i}:\n    location: d{i}.csv\n" + (f"    parents: [d{i - 1}]\n" if i else "")
        for i in range(n)
    )
    assert len(catalog.read(_write(project, "datasets:\n" + body))) == n


@pytest.mark.parametrize(
    "name",
    ['"iris\\n"', '"iris\\r"', '"ir\\tis"', '"iris\\0"', '"\\e[31miris"', "ïris", "a" * 101,
     '"iris\\u202e"', "1", "true", "null", '"-iris"', '"iris@x"'],
)  # fmt: skip
def test_names_with_control_or_odd_characters_are_refused(project: Path, name: str) -> None:
    f = _write(project, f"datasets:\n  {name}:\n    location: a.csv\n")
    with pytest.raises(CatalogError, match="invalid dataset name") as err:
        catalog.read(f)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("location", '"raw/a\\n.csv"'),
        ("location", '"raw/a\\0.csv"'),
        ("location", '"raw/\\e[2Ja.csv"'),
        ("description", '"hi\\e[2J"'),
        ("description", '"evil \\u202e txt"'),
    ],
)
def test_control_characters_in_text_fields(project: Path, field: str, value: str) -> None:
    extra = "location: a.csv\n    " if field != "location" else ""
    f = _write(project, f"datasets:\n  a:\n    {extra}{field}: {value}\n")
    with pytest.raises(CatalogError, match="control characters"):
        catalog.read(f)


def test_multi_line_descriptions_are_fine(project: Path) -> None:
    f = _write(
        project, "datasets:\n  a:\n    location: a.csv\n    description: |\n      x\n      y\n"
    )
    assert catalog.read(f)["a"].description == "x\ny"


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=120))
def test_check_name_accepts_only_safe_names(name: str) -> None:
    try:
        catalog.check_name(name)
    except CatalogError as exc:
        assert "\n" not in str(exc)
        return
    assert 1 <= len(name) <= catalog.MAX_NAME
    assert name[0].isascii() and name[0].isalpha()
    assert all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in name)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=60))
def test_any_yaml_value_as_location_is_one_line(project: Path, value: str) -> None:
    import json

    f = _write(project, f"datasets:\n  a:\n    location: {json.dumps(value)}\n")
    try:
        entries = catalog.read(f)
    except CatalogError as exc:
        assert "\n" not in str(exc)
        return
    assert entries["a"].location == value.strip()


# --------------------------------------------------------------------------- as an attacker


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("location: 3", "'location' must be a path"),
        ("location: [a.csv]", "'location' must be a path"),
        ("location: !!binary aGk=", "'location' must be a path"),  # bytes are not text
        ("location: a.csv\n    description: [x]", "'description'"),
        ("location: a.csv\n    parents: [1]", "'parents' must be a list of dataset names"),
        ("location: a.csv\n    save_options: [x]", "'save_options' must be a mapping"),
        ("location: a.csv\n    load_options: {1: x}", "'load_options' must be a mapping"),
        ("location: a.csv\n    format: 3", "'format' must be a format name"),
        ("location: a.csv\n    fingerprint: 'sha256:ab\\n'", "sha256:<hex>"),
        ("location: a.csv\n    name: b", "unknown key 'name' for a file dataset"),
        ("location: a.csv\n    sql: {}\n    zz: 1", "unknown key 'sql'"),
        ("connection: X\n    table: t\n    chunksize: '5'", "'chunksize' must be a whole"),
        ("connection: [X]\n    table: t", "'connection' must be the name"),
        ("connection: X\n    table: t\n    snapshots: [{}]", "snapshot 1: 'id' is required"),
        ("connection: X\n    table: t\n    snapshots: [{id: 20261123T101500Z, x: 1}]",
         "snapshot 1: unknown key 'x' for a snapshot; allowed: id, location"),
        ("connection: X\n    table: t\n    snapshots: [{id: 20261123T101500Z, location: a,"
         " fingerprint: 'sha256:00', taken: t, connection: X, query: q, rows: -1}]",
         "'rows' input should be greater than or equal to 0"),
    ],
)  # fmt: skip
def test_wrong_types_and_unknown_keys_are_one_line(project: Path, body: str, match: str) -> None:
    f = _write(project, f"datasets:\n  a:\n    {body}\n")
    with pytest.raises(CatalogError, match=match) as err:
        catalog.read(f)
    assert str(err.value).startswith(f"{f}: dataset 'a': ") and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        "datasets: !!python/object/apply:os.system [touch pwned]\n",
        "datasets:\n  a: !!python/object:pathlib.Path {}\n",
        "datasets:\n  a:\n    location: !!python/name:os.system a.csv\n",
        "top: 1\ndatasets: {}\n",
    ],
)
def test_yaml_tags_and_stray_keys_are_refused(project: Path, text: str) -> None:
    f = _write(project, text)
    with pytest.raises(CatalogError) as err:
        catalog.read(f)
    assert "\n" not in str(err.value) and str(f) in str(err.value)
    assert not (Path.cwd() / "pwned").exists() and not (project / "pwned").exists()


def test_huge_catalog_is_refused_before_reading(project: Path) -> None:
    f = project / "data" / "catalog.yml"
    with f.open("wb") as fh:  # sparse: no 64 MiB written, and none read
        fh.truncate(catalog.MAX_BYTES + 1)
    with pytest.raises(CatalogError, match="larger than 64 MiB"):
        catalog.read(f)


@pytest.mark.parametrize(
    "location", ["../../etc/passwd", "/etc/passwd", "raw/../../../x.csv", "file:///etc/passwd"]
)
def test_locations_outside_the_project_are_refused_on_use(project: Path, location: str) -> None:
    from dslc import data
    from dslc.errors import UnsafePathError

    _write(project, f"datasets:\n  a:\n    location: {location}\n    format: csv\n")
    assert catalog.read(project / "data" / "catalog.yml")["a"].location == location  # a string
    with pytest.raises(UnsafePathError, match="outside the project"):
        data.load("a")


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.dates(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
_KEYS = st.sampled_from(["location", "format", "description", "parents", "load_options",
                         "save_options", "fingerprint", "connection", "query", "table", "params",
                         "chunksize", "snapshots", "name"]) | st.text(max_size=10)  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(_KEYS, _VALUES, max_size=5))
def test_any_entry_is_valid_or_one_line(project: Path, raw: dict[str, object]) -> None:
    import yaml

    f = _write(project, yaml.safe_dump({"datasets": {"a": raw}}))
    try:
        entry = catalog.read(f)["a"]
    except CatalogError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{f}: ")
        return
    catalog.write(f, {"a": entry})  # what was accepted is written back, and reads the same
    age(f)
    assert catalog.read(f) == {"a": entry}


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdef"), st.lists(st.sampled_from("abcdef"), max_size=3)))
def test_parent_graphs_are_accepted_iff_acyclic(graph: dict[str, list[str]]) -> None:
    parents = {n: graph.get(n, []) for n in "abcdef"}
    left = dict(parents)  # oracle: strip datasets whose parents are all gone (Kahn)
    while ready := [n for n, ps in left.items() if not set(ps) & set(left)]:
        for n in ready:
            del left[n]
    f = Path(tempfile.mkdtemp(prefix="dslc-test-")) / "catalog.yml"
    entries = {n: DatasetEntry(n, f"{n}.csv", parents=tuple(ps)) for n, ps in parents.items()}
    try:
        catalog.write(f, entries)
    except CatalogError as exc:
        assert left and "parents form a cycle: " in str(exc)
        cycle = str(exc).split("cycle: ")[1].split(";")[0].split(" -> ")
        assert cycle[0] == cycle[-1] and all(p in parents[c] for c, p in itertools.pairwise(cycle))
    else:
        assert not left and catalog.read(f) == entries
    finally:
        shutil.rmtree(f.parent)


# --------------------------------------------------------------------------- caching


def _big(project: Path, n: int) -> Path:
    body = "".join(
        f"  d{i}:\n    location: raw/d{i}.csv\n    description: dataset {i}\n"
        f"    fingerprint: sha256:{i:064x}\n"
        for i in range(n)
    )
    f = _write(project, "# header\ndatasets:\n" + body)
    age(f)
    return f


def test_large_catalog_is_parsed_once_per_change(project: Path) -> None:
    f = _big(project, 2_000)
    first = catalog.read(f)["d0"]
    assert catalog.read(f)["d1999"].fingerprint == f"sha256:{1999:064x}"
    for i in range(0, 2_000, 97):  # later reads: a stat each, the same parse
        assert catalog.read(f)[f"d{i}"].location == f"raw/d{i}.csv"
    assert catalog.read(f)["d0"] is first


def test_parse_notices_content_changed_behind_an_old_mtime(project: Path) -> None:
    f = _write(project, "datasets:\n  aa:\n    location: a.csv\n")
    age(f)
    st = f.stat()
    assert list(catalog.read(f)) == ["aa"]
    f.write_text("datasets:\n  bb:\n    location: b.csv\n", encoding="utf-8")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # `touch -r`: the old mtime back
    assert list(catalog.read(f)) == ["bb"]  # the ctime moved


def test_the_write_lock_excludes_other_processes(project: Path) -> None:
    lock = project / ".dslc" / "catalog.lock"
    code = (
        "import sys, filelock\n"
        "try:\n    filelock.FileLock(sys.argv[1]).acquire(timeout=0.2)\n"
        "except filelock.Timeout:\n    print('busy')\nelse:\n    print('free')"
    )
    probe = [sys.executable, "-c", code, str(lock)]
    with catalog.editing(project):
        assert subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "busy"
    assert subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "free"
