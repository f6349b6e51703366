"""SQL sources on SQLite (no server needed); PostgreSQL is in test_sql_postgres.py."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import stat
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import age
from fakedvc import FakeDvc

from dslc import _catalog as catalog
from dslc import _events as events
from dslc import _sql as sql
from dslc import cli, data
from dslc.errors import CatalogError, DslcError, RawDataWriteError, SqlError

pytest.importorskip("sqlalchemy")

CATALOG = """\
datasets:
  orders:
    connection: SHOP_URL
    query: SELECT id, amount, customer FROM orders WHERE id >= :min_id ORDER BY id
    params: {min_id: 2}
    description: Orders from the shop.
  orders_all:
    connection: SHOP_URL
    table: orders
  nulls:
    connection: SHOP_URL
    query: SELECT id, sparse, maybe_text, maybe_day FROM nulls ORDER BY id
    chunksize: 3
"""


def _make_db(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE orders (id INTEGER, amount REAL, customer TEXT)")
    con.executemany(
        "INSERT INTO orders VALUES (?, ?, ?)",
        [(1, 9.5, "ada"), (2, 20.0, "bob"), (3, 31.25, "cy"), (4, 4.0, None)],
    )
    # Columns NULL in whole chunks (of 3 rows) and filled in others: per-chunk inference
    # differs, and the assembled frame must still match pandas.read_sql's.
    con.execute("CREATE TABLE nulls (id INTEGER, sparse INTEGER, maybe_text TEXT, maybe_day TEXT)")
    rows = [(i, i if i >= 6 else None, "x" if i == 8 else None, None) for i in range(10)]
    con.executemany("INSERT INTO nulls VALUES (?, ?, ?, ?)", rows)
    con.commit()
    con.close()


@pytest.fixture
def shop(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = project / "shop.db"
    _make_db(db)
    (project / "data" / "catalog.yml").write_text(CATALOG, encoding="utf-8")
    monkeypatch.setenv("SHOP_URL", f"sqlite:///{db}")
    return project


def test_load_by_query_and_by_table(shop: Path) -> None:
    got = data.load("orders")
    assert got["id"].tolist() == [2, 3, 4]
    assert list(got.columns) == ["id", "amount", "customer"]
    table = data.load("orders_all")
    assert len(table) == 4 and list(table.columns) == ["id", "amount", "customer"]
    assert data.load("orders", params={"min_id": 4})["id"].tolist() == [4]


def test_the_frame_is_read_sqls(shop: Path) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{shop / 'shop.db'}")
    for name, query in (
        ("nulls", "SELECT id, sparse, maybe_text, maybe_day FROM nulls ORDER BY id"),
        ("orders_all", "SELECT * FROM orders"),
    ):
        expected = pd.read_sql(query, engine)
        pd.testing.assert_frame_equal(data.load(name), expected)  # "nulls": 3 rows per fetch
    engine.dispose()


def test_chunksize_returns_an_iterator(shop: Path) -> None:
    chunks = data.load("orders_all", chunksize=3)
    assert not isinstance(chunks, pd.DataFrame)
    sizes = [len(c) for c in chunks]
    assert sizes == [3, 1]
    with pytest.raises(SqlError, match="chunksize must be a whole number"):
        data.load("orders_all", chunksize=0)


def test_relative_sqlite_paths_are_at_the_project_root(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_URL", "sqlite:///shop.db")
    monkeypatch.chdir(shop / "notebooks")
    assert len(data.load("orders_all")) == 4
    assert not (shop / "notebooks" / "shop.db").exists()


def test_each_load_uses_the_variables_url_of_the_moment(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(data.load("orders_all")) == 4
    other = shop / "other.db"
    _make_db(other)
    with sqlite3.connect(other) as con:
        con.execute("DELETE FROM orders WHERE id > 1")
    con.close()
    monkeypatch.setenv("SHOP_URL", f"sqlite:///{other}")  # a new URL (a new .env)
    assert len(data.load("orders_all")) == 1


def test_loads_are_published_without_credentials(shop: Path) -> None:
    seen: list[events.DatasetUse] = []
    stop = events.subscribe(seen.append)
    try:
        data.load("orders")
        data.load("orders_all")
    finally:
        stop()
    assert [u.location for u in seen] == ["sql://SHOP_URL", "sql://SHOP_URL"]
    assert seen[0].query == CATALOG.splitlines()[3].split("query: ", 1)[1]
    assert seen[1].query == "SELECT * FROM orders"
    assert all(u.fingerprint is None and u.format == "sql" for u in seen)
    with pytest.raises(DslcError, match=r"'orders' is not on this machine \(sql://SHOP_URL\)"):
        data.path("orders")


def test_snapshot_ids_never_reuse_a_file_or_a_recorded_id(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1]})
    base = "20261123T101500Z"
    first = sql.write_snapshot(frame, tmp_path / "s", base)
    second = sql.write_snapshot(frame, tmp_path / "s", base)  # same second: a new file
    third = sql.write_snapshot(frame, tmp_path / "s", base, {f"{base}-3"})  # recorded, gone
    assert [p.stem for p in (first, second, third)] == [base, f"{base}-2", f"{base}-4"]
    assert not first.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    pd.testing.assert_frame_equal(pd.read_parquet(third), frame)


def test_snapshot_freezes_the_result(shop: Path) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first = data.snapshot("orders")
    second = data.snapshot("orders")
    assert first.id != second.id
    taken = dt.datetime.fromisoformat(first.taken.replace("Z", "+00:00"))
    assert before <= taken <= dt.datetime.now(dt.UTC)
    assert first.id == taken.strftime("%Y%m%dT%H%M%SZ")  # the id is the UTC time taken
    path = shop / "data" / "raw" / "snapshots" / "orders" / f"{first.id}.parquet"
    assert first.location == f"raw/snapshots/orders/{first.id}.parquet"
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    entry = data.entries()["orders"]
    assert [s.id for s in entry.snapshots] == [first.id, second.id]
    recorded = yaml.safe_load((shop / "data" / "catalog.yml").read_text())["datasets"]["orders"]
    snap = recorded["snapshots"][0]
    assert snap["connection"] == "SHOP_URL" and snap["taken"] == first.taken
    assert snap["query"].startswith("SELECT id, amount") and snap["rows"] == 3
    assert snap["params"] == {"min_id": 2}
    assert snap["fingerprint"] == data.fingerprint("orders@latest")
    # Frozen: later rows in the database do not change it.
    con = sqlite3.connect(shop / "shop.db")
    con.execute("INSERT INTO orders VALUES (5, 1.0, 'dee')")
    con.commit()
    con.close()
    assert len(data.load("orders")) == 4
    assert len(data.load("orders@latest")) == 3
    pd.testing.assert_frame_equal(data.load(f"orders@{first.id}"), data.load("orders@latest"))
    with pytest.raises(RawDataWriteError, match="immutable"):
        data.save(pd.DataFrame({"a": [1]}), "orders@latest")
    with pytest.raises(RawDataWriteError, match="never writes to databases"):
        data.save(pd.DataFrame({"a": [1]}), "orders")
    with pytest.raises(CatalogError, match="no snapshot '20991231T000000Z'"):
        data.load("orders@20991231T000000Z")
    with pytest.raises(DslcError, match="has no fingerprint"):
        data.fingerprint("orders")


def test_snapshot_cli_verify_and_list(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["data", "snapshot", "orders"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("snapshot orders@") and "(3 rows, sha256:" in out
    assert cli.main(["data", "verify"]) == 0
    out = capsys.readouterr().out
    assert "live: orders (SQL source" in out and "changed" not in out
    assert cli.main(["data", "list"]) == 0
    listing = capsys.readouterr().out
    assert "sql://SHOP_URL" in listing and "orders@" in listing
    snap = next((shop / "data" / "raw" / "snapshots" / "orders").iterdir())
    snap.chmod(0o644)
    snap.write_bytes(b"tampered")
    assert cli.main(["data", "verify"]) == 1
    assert "changed: orders@" in capsys.readouterr().out
    snap.unlink()
    assert cli.main(["data", "verify"]) == 1
    assert "lost: orders@" in capsys.readouterr().out


def _no_leftovers(shop: Path, before: str) -> None:
    assert (shop / "data" / "catalog.yml").read_text() == before
    assert not (shop / "data" / "raw" / "snapshots").exists()


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        ({"SHOP_URL": None}, "environment variable SHOP_URL is not set; put the database URL"),
        ({"SHOP_URL": "not a url"}, "SHOP_URL does not hold a SQLAlchemy URL"),
        ({"SHOP_URL": "nosuchdb://u:pw-SECRET-1@h/db"}, "cannot load the driver for 'nosuchdb'"),
        ({"SHOP_URL": "snowflake://u:pw-SECRET-1@acct/db"}, "uv add snowflake-sqlalchemy"),
        ({"SHOP_URL": "duckdb:///x.duckdb"}, "uv add duckdb-engine"),
        ({"SHOP_URL": "mysql+mysqldb://u:pw-SECRET-1@h/db"}, "uv add mysqlclient"),
        ({"SHOP_URL": "postgresql+psycopg2://u:pw-SECRET-1@h/db"}, "uv add psycopg2-binary"),
        (
            {"SHOP_URL": "postgresql+psycopg://u:pw-SECRET-1@127.0.0.1:1/db"},
            r"cannot connect to the database of SHOP_URL: .*127\.0\.0\.1.*port 1 failed",
        ),
    ],
)
def test_connection_errors_are_one_line_without_secrets(
    shop: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setup: dict[str, str | None],
    match: str,
) -> None:
    for var, value in setup.items():
        if value is None:
            monkeypatch.delenv(var)
        else:
            monkeypatch.setenv(var, value)
    before = (shop / "data" / "catalog.yml").read_text()
    with pytest.raises(SqlError, match=match) as err:
        data.load("orders")
    msg = str(err.value)
    assert msg.startswith("dataset 'orders': ") and "\n" not in msg
    assert "pw-SECRET-1" not in msg and "not a url" not in msg
    code = cli.main(["data", "snapshot", "orders"])
    out, errout = capsys.readouterr()
    assert code == 1 and out == "" and errout.count("\n") == 1
    assert errout.startswith("dslc: error: dataset 'orders': ") and "pw-SECRET-1" not in errout
    _no_leftovers(shop, before)


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ("table: no_such_table", "the query failed: no such table: no_such_table; check 'table'"),
        ("query: SELECT * FROM no_such_table", "the query failed: no such table: no_such_table"),
        ("query: SELEKT 1", "the query failed: "),
        (
            "query: SELECT * FROM orders WHERE id > :since",
            "bind parameter 'since'; check 'query' and 'params'",
        ),
        ("query: SELECT 1\n    load_options: {bogus: 1}", "unexpected keyword argument 'bogus'"),
    ],
)
def test_query_errors_are_one_line_and_write_nothing(
    shop: Path, capsys: pytest.CaptureFixture[str], entry: str, match: str
) -> None:
    cat = shop / "data" / "catalog.yml"
    cat.write_text(f"datasets:\n  bad:\n    connection: SHOP_URL\n    {entry}\n")
    before = cat.read_text()
    with pytest.raises(SqlError, match=match) as err:
        data.load("bad")
    assert "\n" not in str(err.value) and str(err.value).startswith("dataset 'bad': ")
    assert cli.main(["data", "snapshot", "bad"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    _no_leftovers(shop, before)


def test_snapshot_of_a_file_dataset_is_refused(shop: Path) -> None:
    (shop / "data" / "catalog.yml").write_text("datasets:\n  iris:\n    location: raw/iris.csv\n")
    with pytest.raises(SqlError, match="is not a SQL source"):
        data.snapshot("iris")
    with pytest.raises(DslcError, match="only SQL sources have snapshots"):
        data.load("iris@latest")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("connection: postgresql://u:hunter2@h/db\n    query: SELECT 1", "not the URL itself"),
        ("connection: 'x y'\n    query: SELECT 1", "name of an environment variable"),
        ("connection: X\n    query: SELECT 1\n    table: t", "exactly one of 'query' and 'table'"),
        ("connection: X", "exactly one of 'query' and 'table'"),
        ("connection: X\n    table: 'a; DROP TABLE b'", "'table' must be a table name"),
        ("connection: X\n    table: t\n    chunksize: 0", "'chunksize' must be a whole number"),
        ("connection: X\n    table: t\n    chunksize: true", "'chunksize' must be a whole number"),
        ("connection: X\n    table: t\n    params: {'a b': 1}", "map parameter names"),
        ("connection: X\n    table: t\n    load_options: {con: 1}", "may not set con"),
        ("connection: X\n    table: t\n    format: csv", "unknown key 'format'"),
        ("connection: X\n    table: t\n    snapshots: [{id: x}]", "'id' string should match"),
        ("connection: X\n    table: t\n    snapshots: 3", "'snapshots' input should be a valid"),
    ],
)
def test_sql_entries_are_validated(project: Path, body: str, match: str) -> None:
    f = project / "data" / "catalog.yml"
    f.write_text(f"datasets:\n  s:\n    {body}\n")
    with pytest.raises(CatalogError, match=__import__("re").escape(match)) as err:
        catalog.read(f)
    assert "hunter2" not in str(err.value) and "\n" not in str(err.value)


def test_sql_entry_round_trips(project: Path) -> None:
    f = project / "data" / "catalog.yml"
    f.write_text(CATALOG)
    entries = catalog.read(f)
    catalog.write(f, entries)
    age(f)  # a new stamp: the file is parsed again, not remembered from the write
    assert catalog.read(f) == entries
    assert entries["orders"].sql is not None and entries["orders"].sql.params == {"min_id": 2}


def test_import_dslc_sql_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import dslc._sql, sys;"
        "print(sorted(m for m in ('sqlalchemy', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_environment_is_never_written(shop: Path) -> None:
    data.load("orders")
    data.snapshot("orders")
    url = os.environ["SHOP_URL"]
    for f in [shop / "data" / "catalog.yml", *(shop / ".dslc").iterdir()]:
        if f.is_file():
            assert url not in f.read_text(errors="replace")


def test_a_snapshot_in_a_dvc_project_is_put_under_dvc(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeDvc(tmp_path / "fake-dvc", monkeypatch)
    (shop / ".dvc").mkdir()
    snap = data.snapshot("orders")
    assert fake.calls == [("add", f"data/{snap.location}")]
    assert not (shop / "data" / snap.location).stat().st_mode & 0o222  # still read-only


def test_a_snapshot_outside_dvc_runs_no_dvc(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeDvc(tmp_path / "fake-dvc", monkeypatch)
    data.snapshot("orders")
    assert fake.calls == []


def _tree(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``folder`` but dslc's caches: (size, mtime, content)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in folder.rglob("*")
        if p.is_file() and ".dslc" not in p.parts
    }


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///missing.db",
        "sqlite:///data/external/missing.db",
        "sqlite:///file:missing.db?mode=rwc&uri=true",  # the URL asks to create: still no
        "sqlite:///{root}/missing.db",
    ],
)
def test_a_sqlite_url_to_a_missing_file_creates_nothing(
    shop: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("SHOP_URL", url.format(root=shop))
    before = _tree(shop.parent)
    with pytest.raises(
        SqlError,
        match="unable to open database file; check that the server runs and the URL in SHOP_URL",
    ):
        data.load("orders")
    assert cli.main(["data", "snapshot", "orders"]) == 1
    assert _tree(shop.parent) == before


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("ATTACH 'new.db' AS x", "not authorized"),
        ("ATTACH 'file:new.db?mode=rwc' AS x", "not authorized"),
        ("ATTACH '{root}/data/raw/new.db' AS x", "not authorized"),
        ("VACUUM INTO 'new.db'", "authorization denied"),
        ("VACUUM", "authorization denied"),
        ("CREATE TABLE new (a INTEGER)", "readonly database"),
        ("DROP TABLE orders", "readonly database"),
        ("INSERT INTO orders VALUES (9, 1.0, 'eve') RETURNING id", "readonly database"),
        ("WITH c AS (SELECT 9, 1.0, 'eve') INSERT INTO orders SELECT * FROM c", "readonly"),
        ("UPDATE orders SET amount = 0 RETURNING id", "readonly database"),
        ("PRAGMA user_version = 5", "readonly database"),
        ("PRAGMA journal_mode = WAL", "readonly database"),
        ("SELECT 1; CREATE TABLE new (a INTEGER)", "one statement at a time"),
    ],
)
def test_a_query_cannot_create_or_change_a_file(
    shop: Path, capsys: pytest.CaptureFixture[str], query: str, match: str
) -> None:
    """Sources are read-only: the database opens read-only and ATTACH (which creates any
    file it names) is refused by SQLite's authorizer."""
    cat = shop / "data" / "catalog.yml"
    cat.write_text(
        CATALOG + f'  bad:\n    connection: SHOP_URL\n    query: "{query}"\n'.format(root=shop)
    )
    before = _tree(shop.parent)
    with pytest.raises(SqlError, match=match) as err:
        data.load("bad")
    assert "\n" not in str(err.value)
    assert cli.main(["data", "snapshot", "bad"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert _tree(shop.parent) == before
    assert len(data.load("orders_all")) == 4


def test_a_locked_sqlite_source_answers_within_seconds(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys
    import time

    data.snapshot("orders")  # verify reads it while the database is locked
    holder = subprocess.Popen(  # another process writes and holds the lock
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(shop / 'shop.db')!r}, isolation_level=None)\n"
         "c.execute('BEGIN EXCLUSIVE'); c.execute('DELETE FROM orders')\n"
         "print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        for call in (lambda: data.load("orders"), lambda: data.snapshot("orders")):
            start = time.monotonic()
            with pytest.raises(SqlError, match=r"is locked by another session .*try again") as err:
                call()
            assert time.monotonic() - start < sql.LOCK_TIMEOUT_S + 2
            assert "\n" not in str(err.value)
        start = time.monotonic()
        assert cli.main(["data", "verify", "--fast"]) == 0
        assert cli.main(["data", "snapshot", "orders"]) == 1
        assert time.monotonic() - start < sql.LOCK_TIMEOUT_S + 3
        last = capsys.readouterr().err.splitlines()[-1]
        assert last.startswith("dslc: error: dataset 'orders': the database of SHOP_URL is lo")
    finally:
        holder.kill()
        holder.wait()
    assert len(data.load("orders")) == 3  # the lock is gone, the data unchanged


def _spellings(snap: Path, root: Path) -> list[object]:
    rel = snap.relative_to(root / "data").as_posix()
    return [
        rel, snap, str(snap), f"../data/{rel}", f"raw/snapshots/../snapshots/{rel[14:]}",
        f"file://{snap}", f"local://{snap}",
        "raw/snapshots/orders/new.parquet",  # a new file in the snapshots folder: no either
    ]  # fmt: skip


def test_no_save_overwrites_a_snapshot_even_with_force(shop: Path) -> None:
    snap = shop / "data" / data.snapshot("orders").location
    before = (snap.read_bytes(), snap.stat().st_mode, snap.stat().st_ino)
    for where in _spellings(snap, shop):
        for force in (False, True):
            with pytest.raises(RawDataWriteError, match="snapshots are immutable") as err:
                data.save(pd.DataFrame({"a": [1]}), where, force=force, format="parquet")
            assert "\n" not in str(err.value)
    assert (snap.read_bytes(), snap.stat().st_mode, snap.stat().st_ino) == before
    assert sorted(p.name for p in snap.parent.iterdir()) == [snap.name]


def test_a_snapshot_killed_at_any_point_is_never_writable(shop: Path) -> None:
    """kill -9 right after the snapshot appears (the catalog not yet written): the file
    is read-only, unrecorded, and the next snapshot takes another id."""
    import signal
    import subprocess
    import sys

    code = (
        "import os, signal\nfrom dslc import _atomic, cli\nreal = os.link\n"
        "def link(*a):\n    real(*a)\n    os.kill(os.getpid(), signal.SIGKILL)\n"
        "_atomic.os.link = link\ncli.main(['data', 'snapshot', 'orders'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=shop, check=False)
    assert proc.returncode == -signal.SIGKILL
    (left,) = (shop / "data" / "raw" / "snapshots" / "orders").glob("2*.parquet")
    assert not left.stat().st_mode & 0o222
    assert data.entries()["orders"].snapshots == ()
    assert data.snapshot("orders").id != left.stem


def test_replace_refuses_to_drop_a_sql_sources_records(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data.snapshot("orders")
    cat = shop / "data" / "catalog.yml"
    before = cat.read_text()
    for args in (["orders", "raw/iris.csv"], ["orders", "raw/iris.csv", "--replace"]):
        assert cli.main(["data", "add", *args]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "SQL source's query and snapshots are never" in err
    assert cat.read_text() == before
