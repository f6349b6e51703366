"""SQL sources read through SQLAlchemy (helpers/README.md); messages are scrubbed of URLs."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from . import config
from ._atomic import atomic_path
from ._catalog import SqlSource
from ._secrets import scrub
from .errors import SqlError

CONNECT_TIMEOUT_S = 10
LOCK_TIMEOUT_S = 2  # waiting for another session's lock: answer within seconds instead
FETCH_ROWS = 50_000  # rows per round trip when the entry sets no chunksize (bench_sql.py)

# What `uv add` installs for a SQLAlchemy drivername, where it is not the driver's own name.
DRIVERS = {
    "postgresql": '"psycopg[binary]" (and write the URL as postgresql+psycopg://...)',
    "postgresql+psycopg": '"psycopg[binary]"',
    "postgresql+psycopg2": "psycopg2-binary",
    "mysql": "pymysql (and write the URL as mysql+pymysql://...)",
    "mysql+mysqldb": "mysqlclient",
    "mssql": "pyodbc (and write the URL as mssql+pyodbc://...)",
    "snowflake": "snowflake-sqlalchemy",
    "bigquery": "sqlalchemy-bigquery",
    "duckdb": "duckdb-engine",
}
# How each driver spells "give up connecting after N seconds" (connect_args).
_TIMEOUT_ARG = {
    "postgresql": "connect_timeout",
    "postgresql+pg8000": "timeout",
    "mysql": "connect_timeout",
    "mariadb": "connect_timeout",
    "mssql": "timeout",
    "mssql+pymssql": "login_timeout",
}
_PYSQLITE = ("sqlite", "sqlite+pysqlite")  # Python's sqlite3
_LIBPQ = ("postgresql", "postgresql+psycopg", "postgresql+psycopg2")
_LOCKED = re.compile(r"database is locked|lock timeout", re.IGNORECASE)


@dataclass(frozen=True)
class _Context:
    """An error message's dataset, and what it must not show."""

    dataset: str
    secrets: tuple[str, ...] = ()  # the URL and its password, to scrub from driver text

    def error(self, problem: str) -> SqlError:
        return SqlError(f"dataset {self.dataset!r}: {scrub(problem, self.secrets)}")


def driver_hint(drivername: str) -> str:
    """The command that installs the driver SQLAlchemy's ``drivername`` needs."""
    backend, _, driver = drivername.partition("+")
    if package := DRIVERS.get(drivername) or driver or DRIVERS.get(backend):
        return f"uv add {package}"
    return f"install the driver that SQLAlchemy's {drivername!r} dialect needs"


def _connect_args(url: Any) -> dict[str, Any]:
    """Timeouts for connecting and for waiting on a lock, unless the URL sets its own."""
    name = url.drivername
    arg = _TIMEOUT_ARG.get(name) or _TIMEOUT_ARG.get(name.partition("+")[0])
    args: dict[str, Any] = {arg: CONNECT_TIMEOUT_S} if arg else {}
    if name in _PYSQLITE:
        args["timeout"] = LOCK_TIMEOUT_S  # SQLite's busy timeout
    elif name in _LIBPQ:  # a server setting given at connection
        args["options"] = f"-c lock_timeout={LOCK_TIMEOUT_S}s"
    return {k: v for k, v in args.items() if k not in url.query}


def _sqlite_read_only(url: Any, root: Path) -> Any:
    """A SQLite URL read-only (a missing file is an error, not a new database), from the root."""
    db = url.database
    if url.drivername not in _PYSQLITE or not db or db == ":memory:":
        return url
    path = quote(str(root / db.removeprefix("file:")))
    return url.set(database=f"file:{path}").update_query_dict({"mode": "ro", "uri": "true"})


def _refuse_attach(dbapi_connection: Any, _record: Any) -> None:
    """Deny ATTACH (and VACUUM INTO), which write files even on a read-only connection."""

    def authorize(action: int, *_: object) -> int:
        return sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_ATTACH else sqlite3.SQLITE_OK

    dbapi_connection.set_authorizer(authorize)


def _forward_only(dbapi_connection: Any, _record: Any) -> None:
    """psycopg's server-side cursors declared NO SCROLL. Otherwise PostgreSQL keeps a sorted
    result open to random access: bench_sql.py's load took 3% longer (ratio 1.09, not 1.06)."""
    from psycopg import ServerCursor

    class ForwardOnly(ServerCursor[Any]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "scrollable": False})

    dbapi_connection.server_cursor_factory = ForwardOnly  # psycopg's public setting


def engine(variable: str, dataset: str, root: Path) -> tuple[Any, _Context]:
    """An engine for the URL in environment variable ``variable``, without a pool: each
    connection is the read's own (none is kept, shared with a forked child or reused)."""
    config.load_env(root)
    if not (value := os.environ.get(variable, "").strip()):
        raise _Context(dataset).error(
            f"environment variable {variable} is not set; put the database URL in .env, "
            f"e.g. {variable}=postgresql+psycopg://user:password@host:5432/database"
        )
    import sqlalchemy as sa

    try:
        url = sa.make_url(value)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        raise _Context(dataset, (value,)).error(
            f"{variable} does not hold a SQLAlchemy URL (dialect+driver://user:password@"
            "host:port/database); fix it in .env"
        ) from None
    password = url.password or ""  # scrubbed as typed and as quoted too; "" is no secret
    ctx = _Context(dataset, (value, password, quote(password, safe=""), quote_plus(password)))
    url = _sqlite_read_only(url, root)
    try:
        made = sa.create_engine(
            url, poolclass=sa.NullPool, hide_parameters=True, connect_args=_connect_args(url)
        )
    except (sa.exc.NoSuchModuleError, ImportError) as exc:  # no such dialect, or driver
        raise ctx.error(
            f"cannot load the driver for {url.drivername!r} (from {variable}): {exc}; "
            f"{driver_hint(url.drivername)}"
        ) from None
    if url.drivername in _PYSQLITE:
        sa.event.listen(made, "connect", _refuse_attach)
    elif made.dialect.driver == "psycopg":
        sa.event.listen(made, "connect", _forward_only)
    return made, ctx


def _statement(source: SqlSource, dialect: Any) -> tuple[Any, str]:
    """The SQLAlchemy statement for ``source`` and its SQL text (recorded as the query)."""
    import sqlalchemy as sa

    if source.table is not None:
        schema, _, table = source.table.rpartition(".")
        stmt = sa.select(sa.text("*")).select_from(sa.table(table, schema=schema or None))
        return stmt, " ".join(str(stmt.compile(dialect=dialect)).split())
    assert source.query is not None
    return sa.text(source.query), source.query


def _explain(exc: BaseException, ctx: _Context, source: SqlSource, connecting: bool) -> SqlError:
    """One line for a SQLAlchemy or driver error: the driver's own words, and what to fix."""
    while getattr(exc, "orig", None) is None and exc.__cause__ is not None:
        exc = exc.__cause__  # pandas wraps SQLAlchemy's error in its own DatabaseError
    orig = getattr(exc, "orig", None) or exc
    first = next((ln.strip() for ln in str(orig).splitlines() if ln.strip()), type(orig).__name__)
    # SQLAlchemy's own errors wrap the driver's first line in "(module.Class) " and a link.
    text = re.sub(r"^\([\w.]+\)\s*|\s*\(Background on .*$", "", first)
    if _LOCKED.search(text):
        return ctx.error(
            f"the database of {source.connection} is locked by another session ({text});"
            " try again when it is done"
        )
    if connecting:
        return ctx.error(
            f"cannot connect to the database of {source.connection}: {text}; check that the"
            f" server runs and the URL in {source.connection} (.env)"
        )
    key = "query" if source.table is None else "table"
    return ctx.error(f"the query failed: {text}; check '{key}' and 'params' in data/catalog.yml")


@dataclass
class Result:
    query: str  # the SQL text (recorded with the use and in snapshots)
    params: dict[str, Any]
    frames: Iterator[Any]  # its DataFrames (one unless chunked); the connection closes after
    chunked: bool  # the caller asked for chunks (``chunksize``)

    def frame(self) -> Any:
        """The whole result as one DataFrame (not asked for in chunks)."""
        (whole,) = self.frames
        return whole


def read(source: SqlSource, dataset: str, root: Path, options: Mapping[str, Any]) -> Result:
    """Run ``source``'s query or read its table through a server-side cursor; ``options``
    go to ``pandas.read_sql`` (``params`` override the entry's; ``chunksize=N``: frames)."""
    import pandas as pd

    opts = dict(options)
    chunked = opts.pop("chunksize", None)
    if chunked is not None and (type(chunked) is not int or chunked <= 0):  # not a bool
        raise SqlError(f"dataset {dataset!r}: chunksize must be a whole number above 0")
    params = {**source.params, **(opts.pop("params", None) or {})}
    eng, ctx = engine(source.connection, dataset, root)
    stmt, shown = _statement(source, eng.dialect)
    try:
        conn = eng.connect()
    except Exception as exc:
        raise _explain(exc, ctx, source, connecting=True) from None
    try:
        # Server-side cursor: the driver holds `fetch` rows at a time, not the whole result.
        # Read-only transactions on PostgreSQL (BEGIN READ ONLY): nothing a query does can
        # write, whatever it sets for the session. Other databases ignore the option.
        fetch = chunked or source.chunksize or FETCH_ROWS
        streaming = conn.execution_options(
            stream_results=True, max_row_buffer=fetch, postgresql_readonly=True
        )
        got: Any = pd.read_sql(stmt, streaming, params=params or None, chunksize=chunked, **opts)
    except Exception as exc:
        conn.close()
        if isinstance(exc, TypeError):  # an option pandas.read_sql does not take
            raise ctx.error(f"{exc}; check load_options in data/catalog.yml") from None
        raise _explain(exc, ctx, source, connecting=False) from None
    frames = _frames(got if chunked else iter([got]), conn, ctx, source)
    return Result(shown, params, frames, chunked is not None)


def _frames(frames: Iterator[Any], conn: Any, ctx: _Context, source: SqlSource) -> Iterator[Any]:
    """The result's DataFrames; errors in one line; the connection closed at the end."""
    try:
        yield from frames
    except Exception as exc:
        raise _explain(exc, ctx, source, connecting=False) from None
    finally:
        conn.close()


def write_snapshot(frame: Any, folder: Path, base: str, taken: Collection[str] = ()) -> Path:
    """Write ``frame`` read-only as ``folder/<id>.parquet``, never over a file: the id is
    ``base``, else ``base-2``... not in ``taken``."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = (base, *(f"{base}-{n}" for n in range(2, 1000)))
    for dest in (folder / f"{snap_id}.parquet" for snap_id in ids if snap_id not in taken):
        try:
            with atomic_path(dest, overwrite=False, mode=0o444) as tmp:
                frame.to_parquet(tmp)
        except FileExistsError:
            continue
        except (ValueError, TypeError, ImportError) as exc:
            raise SqlError(f"cannot store the result as Parquet: {exc}") from None
        return dest
    raise SqlError(f"too many snapshots taken in the same second in {folder}")  # pragma: no cover
