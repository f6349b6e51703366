"""SQL sources against a real PostgreSQL server (a throwaway cluster on loopback)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from pgcluster import Cluster

from dslc import _events as events
from dslc import _sql as sql
from dslc import cli, data
from dslc.errors import SqlError

psycopg = pytest.importorskip("psycopg")

# A password full of URL syntax: it must be quoted in the URL, and scrubbed in both forms.
PASSWORD = "S3cret:p@ss/w%rd #1"
ROWS = 1_000_000
CATALOG = """\
datasets:
  orders:
    connection: SHOP_URL
    query: SELECT id, amount, customer, day FROM sales.orders WHERE amount >= :least ORDER BY id
    params: {least: 50}
  orders_table:
    connection: SHOP_URL
    table: sales.orders
  big:
    connection: SHOP_URL
    query: SELECT id, amount, customer FROM big ORDER BY id
    chunksize: 100000
  cursors:
    connection: SHOP_URL
    query: SELECT name, is_scrollable FROM pg_cursors
"""


@pytest.fixture(scope="module")
def shop_db(pg: Cluster) -> str:
    """A database `shop` readable by `reader`; returns reader's URL."""
    with psycopg.connect(pg.dsn(), autocommit=True) as con:
        con.execute("DROP DATABASE IF EXISTS shop")
        con.execute("DROP ROLE IF EXISTS reader")
        con.execute(f"CREATE ROLE reader LOGIN PASSWORD '{PASSWORD}'")
        con.execute("CREATE DATABASE shop OWNER reader")
    with psycopg.connect(pg.dsn("shop"), autocommit=True) as con:
        con.execute("SET ROLE reader")
        con.execute("CREATE SCHEMA sales")
        con.execute(
            "CREATE TABLE sales.orders AS SELECT i AS id, (i % 100)::numeric(10, 2) AS amount,"
            " 'c' || (i % 17) AS customer, DATE '2026-01-01' + (i % 30) AS day"
            " FROM generate_series(1, 1000) AS i"
        )
        con.execute(
            "CREATE TABLE big AS SELECT i::bigint AS id, i * 0.5 AS amount,"
            f" 'customer-' || (i % 1000) AS customer FROM generate_series(1, {ROWS}) AS i"
        )
        con.execute("ANALYZE")
    return pg.url("reader", quote(PASSWORD, safe=""), "shop")


@pytest.fixture
def shop(project: Path, shop_db: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    (project / "data" / "catalog.yml").write_text(CATALOG, encoding="utf-8")
    monkeypatch.setenv("SHOP_URL", shop_db)
    return project


def _secrets_absent(text: str) -> None:
    assert PASSWORD not in text and quote(PASSWORD, safe="") not in text
    assert "S3cret" not in text


def test_load_by_query_and_by_table(shop: Path, shop_db: str) -> None:
    import sqlalchemy as sa

    got = data.load("orders")
    engine = sa.create_engine(shop_db)
    expected = pd.read_sql(
        sa.text(
            "SELECT id, amount, customer, day FROM sales.orders WHERE amount >= :least ORDER BY id"
        ),
        engine,
        params={"least": 50},
    )
    engine.dispose()
    pd.testing.assert_frame_equal(got, expected)
    assert len(got) == 500
    table = data.load("orders_table")
    assert len(table) == 1000 and list(table.columns) == ["id", "amount", "customer", "day"]


def test_a_query_runs_in_one_forward_only_cursor(shop: Path) -> None:
    # PostgreSQL lists the cursor that runs this very query: declared NO SCROLL, so that a
    # sort need not keep its result open to random access.
    cursors = data.load("cursors")
    assert len(cursors) == 1 and not cursors["is_scrollable"].item(), cursors


@pytest.mark.slow
def test_chunked_load_of_a_million_rows(shop: Path) -> None:
    frame = data.load("big")
    assert len(frame) == ROWS
    assert int(frame["id"].sum()) == ROWS * (ROWS + 1) // 2
    assert frame["id"].is_monotonic_increasing and str(frame["id"].dtype) == "int64"
    sizes = [len(chunk) for chunk in data.load("big", chunksize=300_000)]
    assert sizes == [300_000, 300_000, 300_000, 100_000]


def test_snapshot_and_credential_free_records(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[events.DatasetUse] = []
    stop = events.subscribe(seen.append)
    try:
        assert cli.main(["data", "snapshot", "orders"]) == 0
        snap_line = capsys.readouterr().out
        latest = data.load("orders@latest")
    finally:
        stop()
    assert "(500 rows, sha256:" in snap_line
    pd.testing.assert_frame_equal(latest, data.load("orders"))
    assert seen[0].location == "sql://SHOP_URL" and seen[0].query.startswith("SELECT id")
    assert seen[1].name.startswith("orders@") and seen[1].role == "output"
    assert seen[2].name == seen[1].name and seen[2].fingerprint == seen[1].fingerprint
    texts = [(shop / "data" / "catalog.yml").read_text()]
    texts += [f.read_text(errors="replace") for f in (shop / ".dslc").glob("*.json")]
    texts += [repr(use) for use in seen]
    for text in texts:
        _secrets_absent(text)
        assert "reader:" not in text and "127.0.0.1" not in text


def test_mlflow_store_holds_no_credentials(shop: Path) -> None:
    pytest.importorskip("mlflow")
    from dslc import tracking

    with tracking.run("sql-source") as run:
        data.load("orders")
    store = (shop / "mlflow.db").read_bytes()
    assert PASSWORD.encode() not in store and quote(PASSWORD, safe="").encode() not in store
    (recorded,) = tracking.client().get_run(run.id).inputs.dataset_inputs
    assert recorded.dataset.source_type == "sql"
    source = json.loads(recorded.dataset.source)
    assert source["connection"] == "SHOP_URL" and source["query"].startswith("SELECT id")


def _one_line(err: pytest.ExceptionInfo[SqlError]) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("dataset ")
    _secrets_absent(msg)
    return msg


def test_wrong_password(shop: Path, pg: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    for wrong in ("wrong-Pa55word", "", quote(PASSWORD[:-1], safe="")):
        monkeypatch.setenv("SHOP_URL", pg.url("reader", wrong, "shop"))
        with pytest.raises(SqlError, match=r"password authentication failed|no password") as err:
            data.load("orders")
        msg = _one_line(err)
        assert msg.startswith("dataset 'orders': cannot connect to the database of SHOP_URL: ")
        assert msg.endswith("check that the server runs and the URL in SHOP_URL (.env)")
        assert not wrong or wrong not in msg


def test_unreachable_server_fails_fast(
    shop: Path, pg: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import time

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    for url in (
        pg.url("reader", quote(PASSWORD, safe=""), "shop").replace(str(pg.port), str(closed)),
        # A non-routable address: only the connect timeout ends the wait (here 2 s).
        f"postgresql+psycopg://reader:{quote(PASSWORD, safe='')}@10.255.255.1:5432/shop"
        "?connect_timeout=2",
    ):
        monkeypatch.setenv("SHOP_URL", url)
        start = time.monotonic()
        with pytest.raises(SqlError, match="cannot connect to the database of SHOP_URL") as err:
            data.load("orders")
        assert time.monotonic() - start < 30
        _one_line(err)


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ("table: sales.nope", 'the query failed: relation "sales.nope" does not exist'),
        ("table: nope", "the query failed: relation \"nope\" does not exist.*; check 'table'"),
        ("query: SELECT * FROM nope", 'the query failed: relation "nope" does not exist'),
        ("query: SELECT 1 +", "the query failed: syntax error"),
        # Fails on the server half way through the stream, after rows were fetched.
        (
            "query: SELECT 1 / (i - 600000) FROM generate_series(1, 1000000) AS i",
            "the query failed: division by zero",
        ),
        ("query: SELECT * FROM big WHERE id < :top", "bind parameter 'top'"),
    ],
)
def test_query_errors(
    shop: Path, capsys: pytest.CaptureFixture[str], entry: str, match: str
) -> None:
    cat = shop / "data" / "catalog.yml"
    cat.write_text(f"datasets:\n  bad:\n    connection: SHOP_URL\n    {entry}\n")
    before = cat.read_text()
    with pytest.raises(SqlError, match=match) as err:
        data.load("bad")
    _one_line(err)
    assert cli.main(["data", "snapshot", "bad"]) == 1
    errout = capsys.readouterr().err
    assert errout.startswith("dslc: error: dataset 'bad': ") and errout.count("\n") == 1
    assert cat.read_text() == before and not (shop / "data" / "raw" / "snapshots").exists()


def test_missing_variable_and_driver(
    shop: Path, pg: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOP_URL")
    with pytest.raises(SqlError, match="environment variable SHOP_URL is not set") as err:
        data.load("orders")
    _one_line(err)
    url = pg.url("reader", quote(PASSWORD, safe=""), "shop")
    for driver, hint in (("psycopg2", "uv add psycopg2-binary"), ("pg8000", "uv add pg8000")):
        if importlib.util.find_spec(driver) is not None:
            continue  # installed here: nothing is missing
        monkeypatch.setenv("SHOP_URL", url.replace("+psycopg", f"+{driver}"))
        with pytest.raises(SqlError, match=f"cannot load the driver .*; {hint}") as err:
            data.load("orders")
        _one_line(err)


def _state(pg: Cluster) -> str:
    """What a write would change: relations, rows, the sequence, functions, settings."""
    return pg.psql(
        "SELECT (SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class c JOIN"
        " pg_namespace n ON n.oid = c.relnamespace WHERE nspname IN ('public', 'sales')),"
        " (SELECT count(*) FROM sales.orders), (SELECT sum(amount) FROM sales.orders),"
        " (SELECT last_value FROM sales.seq),"
        " (SELECT string_agg(proname, ',') FROM pg_proc WHERE proname LIKE 'dslc%'),"
        " (SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database)",
        "shop",
    )


@pytest.fixture
def hostile(shop: Path, pg: Cluster) -> Path:
    """A sequence and a function that writes, owned by reader, for queries to call."""
    pg.psql(
        "SET ROLE reader; CREATE SEQUENCE IF NOT EXISTS sales.seq;"
        " CREATE OR REPLACE FUNCTION sales.grow() RETURNS int LANGUAGE sql AS"
        " $$ INSERT INTO sales.orders (id) VALUES (0) RETURNING id $$",
        "shop",
    )
    return shop


@pytest.mark.parametrize(
    "query",
    [
        "CREATE TABLE sales.new (a int)",
        "DROP TABLE sales.orders",
        "INSERT INTO sales.orders (id) VALUES (0) RETURNING id",
        "UPDATE sales.orders SET amount = 0 RETURNING id",
        "WITH w AS (INSERT INTO sales.orders (id) VALUES (0) RETURNING id) SELECT * FROM w",
        "WITH w AS (DELETE FROM sales.orders RETURNING id) SELECT count(*) FROM w",
        "SELECT sales.grow()",
        "SELECT nextval('sales.seq')",
        "SELECT id FROM sales.orders FOR UPDATE",
        "COMMIT; BEGIN READ WRITE; CREATE TABLE sales.new (a int); COMMIT; SELECT 1",
        "COMMIT; SET default_transaction_read_only = off; COMMIT; CREATE TABLE sales.new (a int)",
        "SELECT 1; CREATE TABLE sales.new (a int)",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "DO $$ BEGIN CREATE TABLE sales.new (a int); END $$",
        "CREATE DATABASE other",
        "COPY sales.orders TO '/tmp/dslc-copy.txt'",
    ],
)
def test_a_query_cannot_write_to_the_database(
    hostile: Path, pg: Cluster, capsys: pytest.CaptureFixture[str], query: str
) -> None:
    cat = hostile / "data" / "catalog.yml"
    cat.write_text(CATALOG + f"  bad:\n    connection: SHOP_URL\n    query: {json.dumps(query)}\n")
    before = _state(pg)
    with pytest.raises(SqlError, match="the query failed") as err:
        data.load("bad")
    _one_line(err)
    assert cli.main(["data", "snapshot", "bad"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert _state(pg) == before and not Path("/tmp/dslc-copy.txt").exists()


def test_no_connection_outlives_its_read(shop: Path, pg: Cluster) -> None:
    data.load("orders")
    assert sum(len(chunk) for chunk in data.load("orders_table", chunksize=2)) > 2
    with psycopg.connect(pg.dsn("shop")) as admin:
        sessions = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'reader'"
        assert admin.execute(sessions).fetchone() == (0,)


def test_a_query_cannot_make_the_next_one_write(hostile: Path, pg: Cluster) -> None:
    """Transactions are read-only one by one (BEGIN READ ONLY), not by a session default
    that a query could turn off for the pooled connection's next user."""
    cat = hostile / "data" / "catalog.yml"
    off = "SELECT set_config('default_transaction_read_only', 'off', false)"
    cat.write_text(
        CATALOG + f'  reset:\n    connection: SHOP_URL\n    query: "{off}"\n'
        '  grow:\n    connection: SHOP_URL\n    query: "SELECT sales.grow()"\n'
    )
    before = _state(pg)
    data.load("reset")
    with pytest.raises(SqlError, match="read-only transaction"):
        data.load("grow")
    assert _state(pg) == before


def test_a_locked_table_answers_within_seconds(
    shop: Path, pg: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    data.snapshot("orders")
    with psycopg.connect(pg.dsn("shop")) as other:  # another session holds the lock
        other.execute("SET idle_in_transaction_session_timeout = '20s'")  # a bug fails, not hangs
        other.execute("LOCK TABLE sales.orders IN ACCESS EXCLUSIVE MODE")
        for call in (lambda: data.load("orders"), lambda: data.load("orders_table")):
            start = time.monotonic()
            with pytest.raises(SqlError, match="is locked by another session") as err:
                call()
            assert time.monotonic() - start < sql.LOCK_TIMEOUT_S + 3
            _one_line(err)
        start = time.monotonic()
        assert cli.main(["data", "verify", "--fast"]) == 0
        assert cli.main(["data", "snapshot", "orders"]) == 1
        assert time.monotonic() - start < sql.LOCK_TIMEOUT_S + 3
        assert "is locked by another session" in capsys.readouterr().err.splitlines()[-1]
    assert len(data.load("orders")) > 0
