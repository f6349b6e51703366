"""SQL sources: catalog entries that read a query or a table through SQLAlchemy.

An entry names the environment variable that holds the database URL (usually set in
``.env``), never the URL itself::

    orders:
      connection: WAREHOUSE_URL
      query: SELECT id, amount, customer FROM orders WHERE day >= :since
      params: {since: 2024-01-01}

``data.load("orders")`` returns a DataFrame, read in chunks through a server-side cursor
(``stream_results``) so the result is never held twice as Python rows; with
``chunksize=N`` it returns an iterator of DataFrames instead. ``snapshot("orders")``
freezes the result as an immutable Parquet file under ``data/raw/snapshots/``.

Secrets: the URL is read from the environment when an engine is made and kept only
inside SQLAlchemy's engine. Catalog, logs, errors, events and snapshots carry the
variable's NAME; error messages are scrubbed of the URL, its password and every other
secret value. One engine per variable and process (disposed at exit, forgotten in a
forked child), with a connect timeout, so an unreachable host fails in seconds.

SQLAlchemy comes with the ``sql`` extra; pandas and SQLAlchemy load on first use.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import _catalog as catalog
from . import _locate as locate
from . import config
from ._catalog import Snapshot, SqlSource
from .errors import DslcError, SqlError

__all__ = ["CONNECT_TIMEOUT_S", "FETCH_ROWS", "assemble", "dispose_all", "load", "snapshot"]

CONNECT_TIMEOUT_S = 10
FETCH_ROWS = 50_000  # rows per round trip when the entry sets no chunksize (bench_sql.py)
SNAPSHOTS = "snapshots"  # data/raw/snapshots/<name>/<id>.parquet

# The one `uv add` line per driver, by SQLAlchemy drivername (dialect, or dialect+driver).
DRIVERS = {
    "postgresql": 'uv add "psycopg[binary]" (and write the URL as postgresql+psycopg://...)',
    "postgresql+psycopg": 'uv add "psycopg[binary]"',
    "postgresql+psycopg2": "uv add psycopg2-binary",
    "postgresql+pg8000": "uv add pg8000",
    "mysql": "uv add pymysql (and write the URL as mysql+pymysql://...)",
    "mysql+pymysql": "uv add pymysql",
    "mysql+mysqldb": "uv add mysqlclient",
    "mariadb+pymysql": "uv add pymysql",
    "mssql": "uv add pyodbc (and write the URL as mssql+pyodbc://...)",
    "mssql+pyodbc": "uv add pyodbc",
    "mssql+pymssql": "uv add pymssql",
    "oracle+oracledb": "uv add oracledb",
    "snowflake": "uv add snowflake-sqlalchemy",
    "bigquery": "uv add sqlalchemy-bigquery",
    "duckdb": "uv add duckdb-engine",
}
# How each driver spells "give up connecting after N seconds" (connect_args).
_TIMEOUT_ARG = {
    "postgresql": "connect_timeout",
    "postgresql+pg8000": "timeout",
    "mysql": "connect_timeout",
    "mariadb": "connect_timeout",
    "mssql": "timeout",
    "mssql+pymssql": "login_timeout",
    "snowflake": "login_timeout",
    "oracle+oracledb": "tcp_connect_timeout",
}
_AUTH = re.compile(
    r"password authentication failed|access denied for user|login failed|"
    r"authentication failed|invalid (user|password)|incorrect password|no password supplied",
    re.IGNORECASE,
)
_NO_TABLE = re.compile(
    r"no such table|does not exist|doesn't exist|invalid object name|unknown table",
    re.IGNORECASE,
)
_MISSING_PARAM = re.compile(r"a value is required for bind parameter '([^']+)'", re.IGNORECASE)

_engines: dict[str, tuple[str, Any]] = {}  # variable -> (hash of its URL, Engine)
_engines_lock = threading.Lock()
_hooks_installed = False


# --------------------------------------------------------------------------- engines


def dispose_all() -> None:
    """Close every engine's connections (at exit, or to start afresh)."""
    with _engines_lock:
        engines = [e for _, e in _engines.values()]
        _engines.clear()
    for engine in engines:
        engine.dispose()


def _forget_in_child() -> None:
    # A forked child must not use the parent's pooled connections (sockets are shared).
    for _, engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


def _install_hooks() -> None:
    global _hooks_installed
    if not _hooks_installed:
        atexit.register(dispose_all)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_forget_in_child)
        _hooks_installed = True


@dataclass(frozen=True)
class _Context:
    """What an error message may say: the dataset, the variable's name, host and port."""

    dataset: str
    variable: str
    secrets: tuple[str, ...] = ()  # the URL and its password, to scrub from driver text
    where: str = ""  # "host:port" when the URL has them

    def scrub(self, text: str) -> str:
        from ._secrets import scrub

        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return scrub(text)

    def error(self, problem: str) -> SqlError:
        return SqlError(f"dataset {self.dataset!r}: {self.scrub(problem)}")


def _driver_hint(drivername: str) -> str:
    backend = drivername.partition("+")[0]
    hint = DRIVERS.get(drivername) or DRIVERS.get(backend)
    return hint or f"install the driver that SQLAlchemy's {drivername!r} dialect needs"


def _timeouts(url: Any) -> dict[str, Any]:
    name = url.drivername
    arg = _TIMEOUT_ARG.get(name) or _TIMEOUT_ARG.get(name.partition("+")[0])
    if arg is None or arg in url.query:
        return {}  # unknown driver, or the URL sets its own
    return {arg: CONNECT_TIMEOUT_S}


def _sqlite_at_root(url: Any, root: Path) -> Any:
    """``sqlite:///rel.db`` is relative to the project root, not to the working directory."""
    db = url.database
    if url.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return url
    return url if Path(db).is_absolute() else url.set(database=str(root / db))


def engine(variable: str, dataset: str, root: Path) -> tuple[Any, _Context]:
    """The process's engine for the URL in environment variable ``variable``.

    Raises:
        SqlError: the variable is unset or not a URL, or the driver is missing.
    """
    config.load_env(root)
    value = os.environ.get(variable, "").strip()
    ctx = _Context(dataset, variable)
    if not value:
        raise ctx.error(
            f"environment variable {variable} is not set; put the database URL in .env, "
            f"e.g. {variable}=postgresql+psycopg://user:password@host:5432/database"
        )
    ctx = _Context(dataset, variable, (value,))
    digest = hashlib.sha256(value.encode()).hexdigest()
    with _engines_lock:
        hit = _engines.get(variable)
    if hit is not None and hit[0] == digest:
        return hit[1], _context_for(hit[1].url, ctx)
    from sqlalchemy import create_engine
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import make_url

    try:
        url = make_url(value)
    except (sa_exc.ArgumentError, ValueError, TypeError):
        raise ctx.error(
            f"{variable} does not hold a SQLAlchemy URL (dialect+driver://user:password@"
            "host:port/database); fix it in .env"
        ) from None
    ctx = _context_for(url, ctx)
    url = _sqlite_at_root(url, root)
    try:
        made = create_engine(
            url, pool_pre_ping=True, hide_parameters=True, connect_args=_timeouts(url)
        )
    except sa_exc.NoSuchModuleError:
        raise ctx.error(
            f"no SQLAlchemy dialect for {url.drivername!r} (from {variable}); "
            f"{_driver_hint(url.drivername)}"
        ) from None
    except ImportError as exc:
        raise ctx.error(
            f"the database driver for {url.drivername!r} (from {variable}) is not installed "
            f"({exc.name or exc}); {_driver_hint(url.drivername)}"
        ) from None
    _install_hooks()
    with _engines_lock:
        old = _engines.get(variable)
        _engines[variable] = (digest, made)
    if old is not None:
        old[1].dispose()  # the variable changed (a new .env): the old pool goes
    return made, ctx


def _context_for(url: Any, ctx: _Context) -> _Context:
    from urllib.parse import quote, quote_plus

    password = url.password or ""
    secrets = (*ctx.secrets, password, quote(password, safe=""), quote_plus(password))
    where = f"{url.host}:{url.port}" if url.host and url.port else (url.host or "")
    return replace(ctx, secrets=tuple(s for s in secrets if s), where=where)


# --------------------------------------------------------------------------- reading


def statement(source: SqlSource, dialect: Any) -> tuple[Any, str]:
    """The SQLAlchemy statement for ``source`` and its SQL text (recorded as the query)."""
    import sqlalchemy as sa

    if source.table is not None:
        schema, _, table = source.table.rpartition(".")
        stmt = sa.select(sa.text("*")).select_from(sa.table(table, schema=schema or None))
        return stmt, " ".join(str(stmt.compile(dialect=dialect)).split())
    assert source.query is not None
    return sa.text(source.query), source.query


def _explain(exc: BaseException, ctx: _Context, source: SqlSource, connecting: bool) -> SqlError:
    """One line for a SQLAlchemy or driver error: what went wrong and what to do."""
    while getattr(exc, "orig", None) is None and exc.__cause__ is not None:
        exc = exc.__cause__  # pandas wraps SQLAlchemy's error in its own DatabaseError
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    # The driver's first line; SQLAlchemy's own errors start with "(module.Class) ".
    text = re.sub(r"^\([\w.]+\)\s*", "", lines[0]) if lines else type(orig).__name__
    sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    full = f"{exc}"
    if missing := _MISSING_PARAM.search(full):
        return ctx.error(
            f"the query needs parameter {missing.group(1)!r}: give it under 'params' in "
            "data/catalog.yml (or pass params={...} to data.load)"
        )
    if sqlstate.startswith("28") or _AUTH.search(text):
        return ctx.error(
            f"the database refused the login (authentication failed); check the user and "
            f"password in {ctx.variable} (.env)"
        )
    if connecting:
        where = f" at {ctx.where}" if ctx.where else ""
        return ctx.error(
            f"cannot connect to the database of {ctx.variable}{where}: {text}; check that the "
            f"server runs and that the host and port in {ctx.variable} (.env) are right"
        )
    if source.table is not None and (sqlstate == "42P01" or _NO_TABLE.search(text)):
        return ctx.error(
            f"table {source.table!r} does not exist in the database of {ctx.variable} "
            f"({text}); check 'table' in data/catalog.yml (schema.table)"
        )
    return ctx.error(f"the query failed: {text}; fix 'query' in data/catalog.yml")


@dataclass
class _Reader:
    """One read: a connection, the statement, and pandas' chunk iterator over its result."""

    target: locate.Target
    source: SqlSource
    ctx: _Context
    shown: str
    rows: int
    frames: Iterator[Any]
    connection: Any
    index_col: Any
    coerce_float: bool
    dtype_backend: str

    def chunks(self) -> Iterator[Any]:
        """The result's DataFrames; errors in one line; the connection closed at the end."""
        try:
            yield from self.frames
        except DslcError:
            raise
        except Exception as exc:
            raise _explain(exc, self.ctx, self.source, connecting=False) from None
        finally:
            self.connection.close()


def _open(target: locate.Target, rows: int | None = None) -> _Reader:
    import pandas as pd

    entry = target.entry
    assert entry is not None and entry.sql is not None
    source = entry.sql
    opts = dict(target.options)
    opts.pop("chunksize", None)
    params = {**source.params, **(opts.pop("params", None) or {})}
    eng, ctx = engine(source.connection, entry.name, target.root)
    stmt, shown = statement(source, eng.dialect)
    fetch = rows or source.chunksize or FETCH_ROWS
    try:
        conn = eng.connect()
    except Exception as exc:
        raise _explain(exc, ctx, source, connecting=True) from None
    try:
        # Server-side cursor: the driver holds `fetch` rows at a time, not the whole result.
        streaming = conn.execution_options(stream_results=True, max_row_buffer=fetch)
        frames = pd.read_sql(stmt, streaming, params=params or None, chunksize=fetch, **opts)
    except TypeError as exc:  # an option pandas.read_sql does not take
        conn.close()
        raise ctx.error(f"{exc}; check load_options in data/catalog.yml") from None
    except Exception as exc:
        conn.close()
        raise _explain(exc, ctx, source, connecting=False) from None
    return _Reader(
        target=target,
        source=source,
        ctx=ctx,
        shown=shown,
        rows=fetch,
        frames=iter(frames),
        connection=conn,
        index_col=opts.get("index_col"),
        coerce_float=bool(opts.get("coerce_float", True)),
        dtype_backend=str(opts.get("dtype_backend", "numpy")),
    )


def assemble(
    frames: Iterable[Any],
    *,
    index_col: Any = None,
    coerce_float: bool = True,
    dtype_backend: str = "numpy",
) -> Any:
    """One DataFrame from chunks, with the dtypes ``pandas.read_sql`` gives the whole result.

    pandas infers each chunk's dtypes alone: a column that is all NULL in one chunk is
    ``object`` there and ``float64`` elsewhere. Such columns are inferred again over all
    their values, as ``read_sql`` would.
    """
    import pandas as pd

    parts = list(frames)
    if len(parts) == 1:
        return parts[0]
    out = pd.concat(parts, ignore_index=index_col is None)
    if dtype_backend == "numpy":
        for col in out.columns:
            if len({str(p[col].dtype) for p in parts}) > 1:
                values = out[col].to_numpy(dtype=object)
                again = pd.DataFrame.from_records(
                    list(zip(values, strict=True)), columns=["c"], coerce_float=coerce_float
                )["c"]
                out[col] = again.array
    return out


def load(target: locate.Target) -> Any:
    """Read a SQL source: a DataFrame, or an iterator of them when ``chunksize`` is given.

    Raises:
        SqlError: missing variable or driver, login refused, server unreachable, unknown
            table, failing query; one line naming the dataset, without credentials.
    """
    from .data import publish

    chunked = target.options.get("chunksize")
    if chunked is not None and (
        not isinstance(chunked, int) or isinstance(chunked, bool) or chunked <= 0
    ):
        raise SqlError(f"dataset {target.name!r}: chunksize must be a whole number above 0")
    reader = _open(target, chunked)
    publish(target, "input", query=reader.shown)
    if chunked is not None:
        return reader.chunks()
    return assemble(
        reader.chunks(),
        index_col=reader.index_col,
        coerce_float=reader.coerce_float,
        dtype_backend=reader.dtype_backend,
    )


# --------------------------------------------------------------------------- snapshots


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def snapshot(name: str, root: Path | None = None) -> Snapshot:
    """Run SQL source ``name`` once and freeze its result under ``data/raw/snapshots/``.

    The Parquet file is written atomically, never over another snapshot, and made
    read-only; the catalog entry gains a :class:`Snapshot` with the file's fingerprint,
    the query, the connection variable's name and the UTC time the query started. In a
    DVC project the file is also put under DVC (``dvc add``) like any raw data. Load it
    with ``data.load(f"{name}@latest")`` or ``data.load(f"{name}@<id>")``.

    Raises:
        SqlError: ``name`` is not a SQL source, or reading it failed (nothing is written).
    """
    from ._atomic import atomic_path
    from ._fingerprint import fingerprint_path

    r = config.project_root() if root is None else root
    catalog.check_name(name)
    target = locate.resolve(name, root=r)
    if not target.is_sql or target.entry is None or target.entry.sql is None:
        raise SqlError(
            f"dataset {name!r} is not a SQL source; snapshots freeze entries with "
            "'connection' and 'query' (or 'table')"
        )
    from .data import publish

    source = target.entry.sql
    taken = _utc_now()
    reader = _open(target)
    publish(target, "input", query=reader.shown)
    frame = assemble(
        reader.chunks(),
        index_col=reader.index_col,
        coerce_float=reader.coerce_float,
        dtype_backend=reader.dtype_backend,
    )
    folder = config.paths(r).raw / SNAPSHOTS / name
    folder.mkdir(parents=True, exist_ok=True)
    cat_file, cache = config.paths(r).catalog, catalog.cache_path(r)
    with catalog.locked(config._state_dir(r) / "catalog.lock"):
        entry = catalog.get(cat_file, name, cache)
        if entry is None or entry.sql is None:
            raise SqlError(f"dataset {name!r} left the catalog while it was read; nothing saved")
        taken_ids = {s.id for s in entry.snapshots}
        dest = _write_new(frame, folder, taken.strftime("%Y%m%dT%H%M%SZ"), taken_ids, atomic_path)
        try:
            cache = config._state_dir(r) / "fingerprints.json"
            fp = fingerprint_path(dest, cache, written=dest.stat())  # written whole, just now
            snap = Snapshot(
                id=dest.stem,
                location=dest.relative_to(r / "data").as_posix(),
                fingerprint=fp,
                taken=taken.isoformat().replace("+00:00", "Z"),
                connection=source.connection,
                query=reader.shown,
                params={**source.params, **(target.options.get("params") or {})},
                rows=len(frame),
            )
            entries = catalog.read(cat_file, cache)
            entries[name] = replace(entry, snapshots=(*entry.snapshots, snap))
            catalog.write(cat_file, entries, cache)
        except BaseException:
            dest.unlink(missing_ok=True)  # a snapshot the catalog does not know is litter
            raise
    publish(locate.resolve(f"{name}@{snap.id}", root=r), "output", snap.fingerprint)
    from . import _dvc as dvc

    if dvc.enabled(r):  # raw data like any other: versioned, pushed and pulled with DVC
        dvc.track(r, dest)
        dest.chmod(0o444)  # dvc add puts back a writable copy from its cache
    return snap


def _write_new(frame: Any, folder: Path, base: str, taken: set[str], atomic_path: Any) -> Path:
    """Write ``frame`` as ``<base>.parquet`` (or ``<base>-2``...), never over a file."""
    for n in range(1, 1000):
        snap_id = base if n == 1 else f"{base}-{n}"
        dest = folder / f"{snap_id}.parquet"
        if snap_id in taken:
            continue
        try:
            with atomic_path(dest, overwrite=False) as tmp:
                frame.to_parquet(tmp)
        except FileExistsError:
            continue
        except (ValueError, TypeError, ImportError) as exc:
            raise SqlError(f"cannot store the result as Parquet: {exc}") from None
        dest.chmod(0o444)  # immutable on disk too
        return dest
    raise SqlError(f"too many snapshots taken in the same second in {folder}")  # pragma: no cover
