"""Slow: SQL sources in a baked project, on a real PostgreSQL, the way its README says.

The user's path end to end: the driver added with the README's `uv add` line, the URL as
one `.env` line, catalog entries by query (with params) and by table, `data.load` from
the project's Python, a 1,000,000-row table read in chunks, `dslc data snapshot`, a
tracked run, and the error cases through the `dslc` command. The password (and the URL
holding it) never shows in the catalog, the MLflow store, logs or any output.

dslc's own tests (helpers/tests/test_sql_postgres.py) check the same functions in process;
here it is the installed project, its `uv run` and its files.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from tests.generated import sh
from tests.postgres import Cluster, free_port

pytestmark = pytest.mark.slow

ROWS = 1_000_000
VARIABLE = "WAREHOUSE_URL"
# Every column type a user meets: integers, exact decimals, text, dates.
TABLES = f"""
CREATE SCHEMA sales;
CREATE TABLE sales.orders AS SELECT i AS id, (i % 100)::numeric(10, 2) AS amount,
    'c' || (i % 7) AS customer, DATE '2026-01-01' + (i % 30) AS day
    FROM generate_series(1, 1000) AS i;
CREATE TABLE big AS SELECT i::bigint AS id, (i % 1000)::float8 AS value
    FROM generate_series(1, {ROWS}) AS i;
ANALYZE;
"""
ENTRIES = f"""\
  orders:
    connection: {VARIABLE}
    query: SELECT id, amount, customer, day FROM sales.orders WHERE amount >= :least ORDER BY id
    params: {{least: 50}}
    description: Orders from the warehouse.
  orders_table:
    connection: {VARIABLE}
    table: sales.orders
  big:
    connection: {VARIABLE}
    table: big
    chunksize: 100000
  no_table:
    connection: {VARIABLE}
    table: sales.nosuch
  no_schema:
    connection: {VARIABLE}
    table: nowhere.orders
  bad_query:
    connection: {VARIABLE}
    query: SELECT id FROM sales.ordrs
  unset_variable:
    connection: NOT_SET_URL
    query: SELECT 1 AS one
"""

LOADS = """
import json
from dslc import data, get_logger

log = get_logger("sql_sources")

orders = data.load("orders")
table = data.load("orders_table")
fewer = data.load("orders", params={"least": 90})
print(json.dumps({
    "orders": [len(orders), float(orders["amount"].sum()), list(orders.columns)],
    "table": [len(table), int(table["id"].sum()), str(table["day"].dtype)],
    "fewer": len(fewer),
}))
log.info("loaded %d orders", len(orders))
"""

MILLION = """
import json, time
from dslc import data, get_logger

log = get_logger("sql_sources")

started = time.perf_counter()
frame = data.load("big")
seconds = time.perf_counter() - started
sizes, total = [], 0
for chunk in data.load("big", chunksize=300_000):
    sizes.append(len(chunk))
    total += int(chunk["id"].sum())
print(json.dumps({
    "rows": len(frame), "id_sum": int(frame["id"].sum()), "value_sum": float(frame["value"].sum()),
    "dtype": str(frame["id"].dtype), "seconds": seconds, "sizes": sizes, "chunk_id_sum": total,
}))
log.info("loaded %d rows in %.2f s", len(frame), seconds)
"""

TRACKED = """
import json
from dslc import data, get_logger, tracking

log = get_logger("sql_sources")

with tracking.run(name="sql-sources") as run:
    live = data.load("orders")
    frozen = data.load("orders@latest")
    run.log_metric("rows", len(live))
    run_id = run.id
(recorded, *rest) = tracking.client().get_run(run_id).inputs.dataset_inputs
print(json.dumps({
    "same": bool(live.equals(frozen)),
    "inputs": [json.loads(d.dataset.source) | {"type": d.dataset.source_type}
               for d in [recorded, *rest]],
}))
"""


class Warehouse:
    """The project set up for SQL sources, and what must never show anywhere."""

    def __init__(self, project: Path, cluster: Cluster, password: str, url: str) -> None:
        self.project = project
        self.cluster = cluster
        self.password = password
        self.url = url
        self.outputs: list[str] = []
        self.log = project / "reports" / "sql.log"  # dslc's log file (DSLC_LOG_FILE)

    @property
    def secrets(self) -> list[str]:
        return [self.password, quote(self.password, safe=""), self.url]

    def run(self, command: str, check: bool = True, env: dict | None = None):
        env = {"DSLC_LOG_FILE": str(self.log), **(env or {})}
        result = sh(command, self.project, check=check, env=env)
        self.outputs.append(result.stdout + result.stderr)
        return result

    def assert_no_secrets(self) -> None:
        """No credential in the catalog, the store, the log, the artifacts, dslc's files or
        anything printed so far: each test ends with this, on what it made."""
        project = self.project
        files = [project / "data" / "catalog.yml", project / "mlflow.db", self.log]
        files += [p for p in (project / "mlartifacts").rglob("*") if p.is_file()]
        files += [p for p in (project / ".dslc").rglob("*") if p.is_file()]
        for path in files:
            content = path.read_bytes() if path.is_file() else b""
            for secret in self.secrets:
                assert secret.encode() not in content, f"{secret!r} in {path}"
        for output in self.outputs:
            for secret in self.secrets:
                assert secret not in output

    def python(self, code: str, tmp_path: Path) -> dict:
        """Run code with the project's Python; its last stdout line is JSON."""
        script = tmp_path / "script.py"
        script.write_text(code)
        result = self.run(f"uv run python {script}", env={"DSLC_LOG_LEVEL": "DEBUG"})
        return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def warehouse(own_project, postgres):
    """A `shop` database owned by `analyst`, and the module's own project set up as its
    README says (the driver added, the URL in .env, the datasets in the catalog)."""
    password = "Sq1-" + secrets.token_urlsafe(10) + "@:/%"
    url = postgres.create_database("shop", "analyst", password)
    postgres.psql(f"SET ROLE analyst; {TABLES}", database="shop")
    wh = Warehouse(own_project, postgres, password, url)
    wh.run(readme_driver_line(own_project))
    with open(own_project / ".env", "a") as env:
        env.write(f"\n{VARIABLE}={url}\n")
    with open(own_project / "data" / "catalog.yml", "a") as catalog:
        catalog.write(ENTRIES)
    return wh


def readme_driver_line(project: Path) -> str:
    """The README's `uv add` line for PostgreSQL, from its "Data from databases" table."""
    readme = (project / "README.md").read_text()
    section = readme.split("## Data from databases", 1)[1].split("\n## ", 1)[0]
    (row,) = [line for line in section.splitlines() if line.startswith("| PostgreSQL")]
    (command,) = re.findall(r"`(uv add [^`]+)`", row)
    return command


def test_load_by_query_with_params_and_by_table(warehouse, tmp_path):
    assert "psycopg" in (warehouse.project / "pyproject.toml").read_text()
    got = warehouse.python(LOADS, tmp_path)
    # amount >= 50: ids whose last two digits are 50-99, ten of each amount.
    assert got["orders"] == [500, 10.0 * sum(range(50, 100)), ["id", "amount", "customer", "day"]]
    assert got["table"] == [1000, 500_500, "object"]  # a DATE column: datetime.date values
    assert got["fewer"] == 100
    warehouse.assert_no_secrets()


def test_a_million_rows_load_whole_and_in_chunks(warehouse, tmp_path):
    got = warehouse.python(MILLION, tmp_path)
    print(f"data.load of {ROWS:,} rows in the baked project: {got['seconds']:.2f} s")
    assert got["rows"] == ROWS and got["dtype"] == "int64"
    assert got["id_sum"] == got["chunk_id_sum"] == ROWS * (ROWS + 1) // 2
    assert got["value_sum"] == 1000.0 * sum(range(1000))
    assert got["sizes"] == [300_000, 300_000, 300_000, 100_000]
    assert "loaded 1000000 rows" in warehouse.log.read_text()  # the log that is scanned
    warehouse.assert_no_secrets()


def _snapshot_files(project: Path) -> dict[str, str]:
    folder = project / "data" / "raw" / "snapshots" / "orders"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.parquet")}


def test_snapshots_are_immutable_files_recorded_in_the_catalog(warehouse, tmp_path):
    project = warehouse.project
    first = warehouse.run("uv run dslc data snapshot orders")
    assert re.match(r"snapshot orders@\d{8}T\d{6}Z: raw/snapshots/orders/", first.stdout)
    assert "(500 rows, sha256:" in first.stdout
    files = _snapshot_files(project)
    warehouse.run("uv run dslc data snapshot orders")
    after = _snapshot_files(project)
    assert len(after) == 2 and all(after[name] == digest for name, digest in files.items())

    catalog = yaml.safe_load((project / "data" / "catalog.yml").read_text())
    snaps = catalog["datasets"]["orders"]["snapshots"]
    assert [Path(s["location"]).name for s in snaps] == sorted(after)
    for snap in snaps:
        path = project / "data" / snap["location"]
        assert snap["fingerprint"] == "sha256:" + after[path.name]
        assert snap["connection"] == VARIABLE and snap["rows"] == 500
        assert snap["query"] == catalog["datasets"]["orders"]["query"]
        assert snap["params"] == {"least": 50}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", snap["taken"])  # UTC
        assert not path.stat().st_mode & 0o222  # read-only
        # Raw data like any other under DVC: a pointer with the file's md5, staged for the
        # next commit (the project's DVC autostages what it records).
        pointer = path.with_name(path.name + ".dvc")
        recorded = yaml.safe_load(pointer.read_text())["outs"][0]["md5"]
        assert recorded == hashlib.md5(path.read_bytes()).hexdigest()
        listed = sh(f"git status --porcelain --untracked-files=all -- {pointer}", project)
        assert listed.stdout.strip() == f"A  {pointer.relative_to(project)}"
    # The raw data guard holds for snapshots too: saving over one is refused.
    refused = warehouse.run(
        "uv run python -c 'from dslc import data; "
        'data.save(data.load("orders@latest"), "raw/snapshots/orders/x.parquet")\'',
        check=False,
    )
    assert refused.returncode != 0 and "data/raw" in refused.stderr
    verify = warehouse.run("uv run dslc data verify", check=False)
    assert "live: orders (SQL source" in verify.stdout
    assert "changed" not in verify.stdout and "lost" not in verify.stdout

    tracked = warehouse.python(TRACKED, tmp_path)
    assert tracked["same"]
    sources = {(i["type"], i.get("connection"), i.get("query")) for i in tracked["inputs"]}
    assert ("sql", VARIABLE, catalog["datasets"]["orders"]["query"]) in sources
    warehouse.assert_no_secrets()


# Each case: the catalog name, the environment that breaks it (the environment wins over
# .env), and what its one line says.
def _error_cases(wh: Warehouse, wrong: str) -> dict[str, tuple[str, dict, str]]:
    port = wh.cluster.port
    closed = free_port()
    return {
        "wrong password": (
            "orders", {VARIABLE: wh.url.replace(quote(wh.password, safe=""), wrong)},
            'password authentication failed for user "analyst"',
        ),
        "unknown user": (
            "orders", {VARIABLE: f"postgresql+psycopg://nobody:{wrong}@127.0.0.1:{port}/shop"},
            'password authentication failed for user "nobody"',
        ),
        "unreachable port": (
            "orders_table", {VARIABLE: wh.url.replace(f":{port}/", f":{closed}/")},
            f'connection to server at "127.0.0.1", port {closed} failed',
        ),
        "unknown host": (
            "orders_table", {VARIABLE: wh.url.replace("127.0.0.1", "warehouse.invalid")},
            "failed to resolve host 'warehouse.invalid'",
        ),
        "unknown table": ("no_table", {}, 'relation "sales.nosuch" does not exist'),
        "unknown schema": ("no_schema", {}, 'relation "nowhere.orders" does not exist'),
        "misspelt table in a query": ("bad_query", {}, "the query failed"),
        "variable not set": ("unset_variable", {}, "environment variable NOT_SET_URL is not set"),
        "variable empty": ("orders", {VARIABLE: ""}, f"environment variable {VARIABLE} is not set"),
        "psycopg2 driver missing": (
            "orders", {VARIABLE: wh.url.replace("+psycopg:", "+psycopg2:")},
            "uv add psycopg2-binary",
        ),
        "MySQL driver missing": (
            "orders", {VARIABLE: f"mysql+pymysql://analyst:{wrong}@127.0.0.1:{port}/shop"},
            "uv add pymysql",
        ),
    }  # fmt: skip


def _data_files(project: Path) -> dict[str, int]:
    return {
        str(p.relative_to(project)): p.stat().st_mtime_ns
        for p in (project / "data").rglob("*")
        if p.is_file()
    }


def test_errors_take_one_line_naming_the_dataset_and_write_nothing(warehouse):
    wrong = "Wr0ng-" + secrets.token_urlsafe(8)
    before = _data_files(warehouse.project)
    for case, (name, env, expected) in _error_cases(warehouse, wrong).items():
        started = time.monotonic()
        # As in a user's shell: uv's own "Bytecode compiled" line is not the command's output.
        env = {"UV_COMPILE_BYTECODE": "0", **env}
        result = warehouse.run(f"uv run dslc data snapshot {name}", check=False, env=env)
        print(f"{case}: {time.monotonic() - started:.1f} s")
        assert result.returncode == 1 and result.stdout == "", (case, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"dslc: error: dataset '{name}': "), (
            case,
            result.stderr,
        )
        assert expected in lines[0], (case, lines[0])
        assert wrong not in lines[0] and quote(wrong, safe="") not in lines[0], case
    assert _data_files(warehouse.project) == before
    warehouse.assert_no_secrets()
