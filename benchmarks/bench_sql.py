"""Load a 1,000,000-row PostgreSQL table with dslc's data.load and with pandas.read_sql.

Run: uv run --project helpers python benchmarks/bench_sql.py [--rows 1000000] [--repeat 5]
Bar (ARCHITECTURE.md, Bars): data.load within 1.1x of pandas.read_sql on the
same engine (time ratio <= 1.1). Peak memory of both is printed beside it: data.load
fetches through a server-side cursor, read_sql all at once.

Starts its own throwaway PostgreSQL cluster on loopback (helpers/tests/pgcluster.py; needs
Debian's postgresql package). Each measurement runs in a fresh process, with the driver
imported before the clock starts (each read opens its own connection), and reads its own peak RSS
(Linux: /proc/self/status, the peak reset just before the load). Reports only; exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

HELPERS_TESTS = Path(__file__).resolve().parents[1] / "helpers" / "tests"
sys.path.insert(0, str(HELPERS_TESTS))

from pgcluster import Unavailable, throwaway_cluster  # noqa: E402

BAR = 1.1
PASSWORD = "bench-Pa55:word"

# One measurement, in a fresh interpreter: argv = method, project root.
_CHILD = r"""
import json, os, sys, time
method, root = sys.argv[1], sys.argv[2]
os.chdir(root)
import pandas as pd
import sqlalchemy as sa
from dslc import config, data, _sql as sql

def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0

engine, _ = sql.engine("BENCH_URL", "big", config.project_root())  # as data.load makes one
data.load("tiny")  # warm: driver imported
pd.read_sql(sa.text("SELECT 1"), engine)
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak RSS (VmHWM) to the current RSS
except OSError:
    pass
base = status("VmRSS")
start = time.perf_counter()
if method == "dslc":
    frame = data.load("big")
else:
    frame = pd.read_sql(sa.text("SELECT id, amount, customer FROM big ORDER BY id"), engine)
seconds = time.perf_counter() - start
peak = status("VmHWM") - base
print(json.dumps({"seconds": seconds, "rows": len(frame), "peak": peak,
                  "frame": int(frame.memory_usage(deep=True).sum())}))
"""

CATALOG = """\
datasets:
  big:
    connection: BENCH_URL
    query: SELECT id, amount, customer FROM big ORDER BY id{chunk}
  tiny:
    connection: BENCH_URL
    query: SELECT 1 AS one
"""


def _fill(cluster: object, rows: int) -> str:
    import psycopg

    dsn = cluster.dsn()  # type: ignore[attr-defined]
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute(f"CREATE ROLE bench LOGIN PASSWORD '{PASSWORD}'")
        con.execute("CREATE DATABASE bench OWNER bench")
    with psycopg.connect(cluster.dsn("bench"), autocommit=True) as con:  # type: ignore[attr-defined]
        con.execute("SET ROLE bench")
        con.execute(
            "CREATE TABLE big AS SELECT i::bigint AS id, i * 0.5 AS amount,"
            f" 'customer-' || (i % 1000) AS customer FROM generate_series(1, {rows}) AS i"
        )
        con.execute("ANALYZE big")
    return cluster.url("bench", quote(PASSWORD, safe=""), "bench")  # type: ignore[attr-defined]


def _project(folder: Path, chunksize: int | None) -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / "pyproject.toml").write_text('[project]\nname = "bench"\n\n[tool.dslc]\n')
    (folder / "data" / "catalog.yml").write_text(
        CATALOG.format(chunk=f"\n    chunksize: {chunksize}" if chunksize else "")
    )
    return folder


def _measure(method: str, root: Path, url: str) -> dict[str, float]:
    env = {**os.environ, "BENCH_URL": url}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, method, str(root)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table")
    parser.add_argument("--repeat", type=int, default=5, help="runs per method (median)")
    parser.add_argument(
        "--chunksize", type=int, help="rows per fetch for data.load (default: dslc's own)"
    )
    args = parser.parse_args()
    try:
        cluster_cm = throwaway_cluster()
        cluster = cluster_cm.__enter__()
    except Unavailable as exc:
        print(f"skipped: {exc}")
        return 0
    try:
        url = _fill(cluster, args.rows)
        with tempfile.TemporaryDirectory(prefix="dslc-bench-sql-") as tmp:
            root = _project(Path(tmp), args.chunksize)
            runs: dict[str, list[dict[str, float]]] = {"dslc": [], "pandas": []}
            for _ in range(args.repeat):  # alternate, so machine load hits both alike
                for method in ("dslc", "pandas"):
                    runs[method].append(_measure(method, root, url))
    finally:
        cluster_cm.__exit__(None, None, None)

    def median(method: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[method])

    print(f"table: {args.rows:,} rows (bigint, double, text) on PostgreSQL, loopback")
    for method, label in (("dslc", "dslc data.load"), ("pandas", "pandas.read_sql")):
        seconds, peak = median(method, "seconds"), median(method, "peak")
        print(
            f"{label:<16} {seconds:6.2f} s  {args.rows / seconds:>10,.0f} rows/s  "
            f"peak +{peak / 2**20:6.0f} MiB  (frame {median(method, 'frame') / 2**20:.0f} MiB)"
        )
    ratio = median("dslc", "seconds") / median("pandas", "seconds")
    memory = median("dslc", "peak") / median("pandas", "peak")
    verdict = "meets" if ratio <= BAR else "MISSES"
    print(f"time ratio dslc/pandas: {ratio:.2f} ({verdict} the bar <= {BAR})")
    print(f"peak memory ratio dslc/pandas: {memory:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
