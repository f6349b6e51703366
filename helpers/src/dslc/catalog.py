"""The data catalog file (``data/catalog.yml``): schema, validation, caching, atomic updates.

Schema::

    datasets:
      iris:                         # a file (or folder) dataset
        location: raw/iris.csv      # relative to data/, or an fsspec URL
        format: csv                 # optional, inferred from the suffix
        description: Fisher's iris measurements
        parents: []                 # names of the datasets it was made from
        load_options: {}            # keyword arguments for the reader
        save_options: {}            # keyword arguments for the writer
        fingerprint: sha256:...     # recorded full-content hash
      orders:                       # a SQL source
        connection: WAREHOUSE_URL   # NAME of the environment variable holding the URL
        query: SELECT id, amount FROM orders WHERE day >= :since   # or table: orders
        params: {since: 2024-01-01} # bound parameters of the query
        chunksize: 50000            # rows fetched per round trip
        load_options: {}            # keyword arguments for pandas.read_sql
        snapshots: []               # written by `dslc data snapshot orders`

The file is parsed once per change: parsed entries are kept in memory and in
``.dslc/catalog-cache.json`` (:mod:`dslc.catalog_cache`), keyed on the file's size, mtime,
ctime and inode, so a lookup in a 20,000-entry catalog costs a ``stat``. The YAML is read
as untrusted data (:mod:`dslc.safeyaml`: no deep nesting, aliases, merge or duplicate
keys); names, text fields and parent cycles are checked here. Every problem is a
one-line :class:`CatalogError` naming the file and the line or entry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import atomic, catalog_cache, formats
from .errors import CatalogError, DslcError

FILE_FIELDS = (
    "location",
    "format",
    "description",
    "parents",
    "load_options",
    "save_options",
    "fingerprint",
)
SQL_FIELDS = (
    "connection",
    "query",
    "table",
    "params",
    "chunksize",
    "description",
    "load_options",
    "snapshots",
)
SNAPSHOT_FIELDS = (
    "id",
    "location",
    "fingerprint",
    "taken",
    "connection",
    "query",
    "params",
    "rows",
)
MAX_NAME = 100
MAX_BYTES = 64 << 20

NAME_RE = re.compile(rf"[A-Za-z][A-Za-z0-9_-]{{0,{MAX_NAME - 1}}}")  # used with fullmatch
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
TABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")
PARAM_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SNAPSHOT_ID_RE = re.compile(r"\d{8}T\d{6}Z(-\d{1,4})?")
_FP_RE = re.compile(r"[a-z0-9_]+:[0-9a-f]+")
# C0 and C1 control characters, DEL, and the Unicode bidirectional overrides that can make
# a terminal show text other than what is stored ("Trojan source").
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class SqlSource:
    """Where a SQL dataset comes from: a connection variable's NAME and a query or table."""

    connection: str
    query: str | None = None
    table: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    chunksize: int | None = None


@dataclass(frozen=True)
class Snapshot:
    """One frozen result of a SQL source: an immutable Parquet file under data/raw."""

    id: str  # UTC time taken, "20261123T101500Z" (plus "-2"... if taken in the same second)
    location: str  # relative to data/
    fingerprint: str
    taken: str  # ISO 8601 UTC, "2026-11-23T10:15:00Z"
    connection: str
    query: str
    params: dict[str, Any] = field(default_factory=dict)
    rows: int | None = None

    def to_yaml(self) -> dict[str, Any]:
        """The snapshot as written in the file (empty optional fields left out)."""
        out = {key: getattr(self, key) for key in SNAPSHOT_FIELDS}
        return {k: v for k, v in out.items() if v is not None and (v or k == "rows")}


@dataclass(frozen=True)
class DatasetEntry:
    """One validated catalog entry: a file dataset, or a SQL source when ``sql`` is set."""

    name: str
    location: str  # for a SQL source: "sql://<CONNECTION VARIABLE NAME>" (never the URL)
    format: str | None = None
    description: str | None = None
    parents: tuple[str, ...] = ()
    load_options: dict[str, Any] = field(default_factory=dict)
    save_options: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None
    sql: SqlSource | None = None
    snapshots: tuple[Snapshot, ...] = ()

    def to_yaml(self) -> dict[str, Any]:
        """The entry as written in the file (empty optional fields left out)."""
        if self.sql is not None:
            out: dict[str, Any] = {"connection": self.sql.connection}
            for key, value in (
                ("query", self.sql.query),
                ("table", self.sql.table),
                ("params", self.sql.params),
                ("chunksize", self.sql.chunksize),
                ("description", self.description),
                ("load_options", self.load_options),
                ("snapshots", [s.to_yaml() for s in self.snapshots]),
            ):
                if value:
                    out[key] = value
            return out
        out = {"location": self.location}
        for key in FILE_FIELDS[1:]:
            value = getattr(self, key)
            if value:
                out[key] = list(value) if key == "parents" else value
        return out

    def snapshot(self, ref: str) -> Snapshot:
        """The snapshot called ``ref`` (an id, or ``latest``); CatalogError if there is none."""
        if not self.snapshots:
            raise CatalogError(
                f"dataset {self.name!r} has no snapshot yet; take one with "
                f"`dslc data snapshot {self.name}`"
            )
        if ref == "latest":
            return self.snapshots[-1]
        for snap in self.snapshots:
            if snap.id == ref:
                return snap
        ids = ", ".join(s.id for s in self.snapshots[-5:])
        raise CatalogError(
            f"dataset {self.name!r} has no snapshot {ref!r} (latest: {ids}); use "
            f"'{self.name}@latest' or one of those ids"
        )


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid dataset name, else raise CatalogError."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise CatalogError(
            f"invalid dataset name {name!r}: use a letter then up to {MAX_NAME - 1} letters, "
            "digits, '_' or '-' (no '/' or '.', which mark paths)"
        )
    return name


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"orders@latest"`` -> ``("orders", "latest")``; ``"iris"`` -> ``("iris", None)``."""
    name, at, snap = ref.partition("@")
    return name, (snap if at else None)


def is_ref(text: object) -> bool:
    """True for a catalog reference: a name, optionally ``@latest`` or ``@<snapshot id>``."""
    if not isinstance(text, str):
        return False
    name, snap = split_ref(text)
    if snap is not None and snap != "latest" and not SNAPSHOT_ID_RE.fullmatch(snap):
        return False
    return bool(NAME_RE.fullmatch(name))


def _parse_yaml(text: str, file: Path) -> Any:
    from .safeyaml import YamlError, load

    try:
        return load(text)
    except YamlError as exc:
        line = f" at line {exc.line}" if exc.line is not None else ""
        raise CatalogError(f"{file}: invalid YAML{line}: {exc.problem}; fix the file") from None


# --------------------------------------------------------------------------- validation


def _no_controls(value: str, allow_lines: bool = False) -> bool:
    return not (_CONTROL_BUT_LINES if allow_lines else _CONTROL).search(value)


class _Checker:
    """Validates one entry; every problem is one line naming the file and the dataset."""

    def __init__(self, file: Path, name: object) -> None:
        self.file = file
        self.name = name

    def bad(self, problem: str) -> CatalogError:
        return CatalogError(f"{self.file}: dataset {self.name!r}: {problem}")

    def text(self, raw: Mapping[Any, Any], key: str, *, required: bool = False,
             lines: bool = False) -> str | None:  # fmt: skip
        value = raw.get(key)
        if value is None:
            if required:
                raise self.bad(f"{key!r} is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.bad(f"{key!r} must be a non-empty string")
        if not _no_controls(value, allow_lines=lines):
            raise self.bad(f"{key!r} contains control characters; remove them")
        return value.strip()

    def mapping(self, raw: Mapping[Any, Any], key: str) -> dict[str, Any]:
        value = raw.get(key) or {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self.bad(f"{key!r} must be a mapping of keyword arguments")
        return dict(value)

    def fingerprint(self, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not _FP_RE.fullmatch(value):
            raise self.bad(f"'fingerprint' must look like 'sha256:<hex>', got {value!r}")
        return value

    def keys(self, raw: Mapping[Any, Any], allowed: tuple[str, ...], kind: str) -> None:
        unknown = sorted(set(map(str, raw)) - set(allowed))
        if unknown:
            raise self.bad(
                f"unknown key(s) {', '.join(unknown)} for {kind}; allowed: {', '.join(allowed)}"
            )


def _file_entry(c: _Checker, name: str, raw: Mapping[Any, Any]) -> DatasetEntry:
    c.keys(raw, FILE_FIELDS, "a file dataset")
    location = c.text(raw, "location")
    if location is None:
        raise c.bad(
            "'location' is required: a path relative to data/ or a URL (or 'connection' "
            "and 'query' for a SQL source)"
        )
    fmt = raw.get("format")
    if fmt is not None:
        if not isinstance(fmt, str):
            raise c.bad(f"'format' must be a string, got {type(fmt).__name__}")
        try:
            fmt = formats.normalize(fmt)
        except DslcError as exc:
            raise c.bad(str(exc)) from None
    parents = raw.get("parents") or []
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise c.bad("'parents' must be a list of dataset names")
    return DatasetEntry(
        name=name,
        location=location,
        format=fmt,
        description=c.text(raw, "description", lines=True),
        parents=tuple(parents),
        load_options=c.mapping(raw, "load_options"),
        save_options=c.mapping(raw, "save_options"),
        fingerprint=c.fingerprint(raw.get("fingerprint")),
    )


def _connection(c: _Checker, value: object) -> str:
    if isinstance(value, str) and ENV_NAME_RE.fullmatch(value):
        return value
    if isinstance(value, str) and ("://" in value or "@" in value or ":" in value):
        # Never echo it: it may be a URL with a password pasted by mistake.
        raise c.bad(
            "'connection' must be the NAME of an environment variable (such as "
            "WAREHOUSE_URL) that holds the database URL, not the URL itself; move the URL "
            "to .env and put the variable's name here"
        )
    raise c.bad(
        "'connection' must be the name of an environment variable (letters, digits and "
        "'_', such as WAREHOUSE_URL)"
    )


def _params(c: _Checker, value: object, where: str = "'params'") -> dict[str, Any]:
    if value is None:
        return {}
    scalar = (str, int, float, bool, dt.date, dt.datetime)
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and PARAM_RE.fullmatch(k) for k in value
    ):
        raise c.bad(f"{where} must map parameter names (letters, digits, '_') to values")
    for key, v in value.items():
        if v is not None and not isinstance(v, scalar):
            raise c.bad(f"{where}: parameter {key!r} must be a single value (text, number, date)")
    return dict(value)


def _snapshot(c: _Checker, raw: object, i: int) -> Snapshot:
    if not isinstance(raw, Mapping):
        raise c.bad(f"snapshot {i + 1} must be a mapping of {', '.join(SNAPSHOT_FIELDS)}")
    c.keys(raw, SNAPSHOT_FIELDS, "a snapshot")
    snap_id = raw.get("id")
    if not isinstance(snap_id, str) or not SNAPSHOT_ID_RE.fullmatch(snap_id):
        raise c.bad(f"snapshot {i + 1}: 'id' must look like 20261123T101500Z")
    location, taken, query = (
        c.text(raw, key, required=True, lines=key == "query")
        for key in ("location", "taken", "query")
    )
    fp = c.fingerprint(raw.get("fingerprint"))
    if fp is None:
        raise c.bad(f"snapshot {snap_id}: 'fingerprint' is required")
    rows = raw.get("rows")
    if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 0):
        raise c.bad(f"snapshot {snap_id}: 'rows' must be a whole number")
    return Snapshot(
        id=snap_id,
        location=str(location),
        fingerprint=fp,
        taken=str(taken),
        connection=_connection(c, raw.get("connection")),
        query=str(query),
        params=_params(c, raw.get("params"), f"snapshot {snap_id}: 'params'"),
        rows=rows,
    )


def _sql_entry(c: _Checker, name: str, raw: Mapping[Any, Any]) -> DatasetEntry:
    if "location" in raw:
        raise c.bad(
            "give either 'location' (a file) or 'connection' (a SQL source), not both; "
            "snapshots of a SQL source are recorded under 'snapshots'"
        )
    c.keys(raw, SQL_FIELDS, "a SQL source")
    connection = _connection(c, raw.get("connection"))
    query = c.text(raw, "query", lines=True)
    table = raw.get("table")
    if (query is None) == (table is None):
        raise c.bad("a SQL source needs exactly one of 'query' and 'table'")
    if table is not None and (not isinstance(table, str) or not TABLE_RE.fullmatch(table)):
        raise c.bad(
            "'table' must be a table name, optionally with its schema (sales.orders); "
            "use 'query' for anything else"
        )
    chunksize = raw.get("chunksize")
    if chunksize is not None and (
        not isinstance(chunksize, int) or isinstance(chunksize, bool) or chunksize <= 0
    ):
        raise c.bad("'chunksize' must be a whole number of rows above 0")
    load_options = c.mapping(raw, "load_options")
    reserved = sorted(set(load_options) & {"sql", "con", "params", "chunksize"})
    if reserved:
        raise c.bad(f"load_options may not set {', '.join(reserved)}: the entry's own keys do that")
    snapshots = raw.get("snapshots") or []
    if not isinstance(snapshots, list):
        raise c.bad("'snapshots' must be a list (written by `dslc data snapshot`)")
    snaps = tuple(_snapshot(c, s, i) for i, s in enumerate(snapshots))
    if len({s.id for s in snaps}) != len(snaps):
        raise c.bad("two snapshots have the same id")
    return DatasetEntry(
        name=name,
        location=f"sql://{connection}",
        description=c.text(raw, "description", lines=True),
        load_options=load_options,
        sql=SqlSource(
            connection=connection,
            query=query,
            table=table,
            params=_params(c, raw.get("params")),
            chunksize=chunksize,
        ),
        snapshots=snaps,
    )


def _entry(file: Path, name: object, raw: object) -> DatasetEntry:
    c = _Checker(file, name)
    try:
        valid = check_name(name)
    except CatalogError as exc:
        raise CatalogError(f"{file}: {exc}") from None
    if not isinstance(raw, Mapping):
        raise c.bad(
            f"expected a mapping of {', '.join(FILE_FIELDS)} (or of {', '.join(SQL_FIELDS)} for "
            f"a SQL source), got {type(raw).__name__}"
        )
    return _sql_entry(c, valid, raw) if "connection" in raw else _file_entry(c, valid, raw)


def _check_graph(file: Path, entries: Mapping[str, DatasetEntry]) -> None:
    """Every parent exists and no dataset descends from itself."""
    for entry in entries.values():
        for parent in entry.parents:
            if parent not in entries:
                raise CatalogError(
                    f"{file}: dataset {entry.name!r}: parent {parent!r} is not in the catalog"
                )
    done: set[str] = set()
    for start in entries:
        if start in done:
            continue
        # Iterative depth-first search: a long chain of parents must not hit the stack limit.
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(entries[start].parents))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                cycle = [*path[path.index(child) :], child]
                raise CatalogError(
                    f"{file}: parents form a cycle: {' -> '.join(cycle)}; a dataset cannot "
                    "descend from itself"
                )
            elif child not in done:
                stack.append((child, iter(entries[child].parents)))
                path.append(child)
                on_path.add(child)


def _validate(file: Path, doc: Any) -> dict[str, DatasetEntry]:
    if doc is None:
        return {}
    if not isinstance(doc, Mapping) or set(map(str, doc)) - {"datasets"}:
        raise CatalogError(f"{file}: the top level must be a single 'datasets:' mapping")
    datasets = doc.get("datasets") or {}
    if not isinstance(datasets, Mapping):
        raise CatalogError(f"{file}: 'datasets' must map dataset names to entries")
    entries = {str(n): _entry(file, n, raw) for n, raw in datasets.items()}
    _check_graph(file, entries)
    return entries


# --------------------------------------------------------------------------- caching

Stamp = tuple[int, int, int, int]
_memo: dict[Path, tuple[Stamp, dict[str, DatasetEntry]]] = {}
_memo_lock = threading.Lock()


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _rebuild(name: str, raw: Mapping[str, Any]) -> DatasetEntry:
    """An entry from its already validated YAML form (the persistent cache)."""
    if "connection" in raw:
        return DatasetEntry(
            name=name,
            location=f"sql://{raw['connection']}",
            description=raw.get("description"),
            load_options=dict(raw.get("load_options") or {}),
            sql=SqlSource(
                connection=raw["connection"],
                query=raw.get("query"),
                table=raw.get("table"),
                params=dict(raw.get("params") or {}),
                chunksize=raw.get("chunksize"),
            ),
            snapshots=tuple(
                Snapshot(**{k: s[k] for k in SNAPSHOT_FIELDS if k in s})
                for s in raw.get("snapshots") or []
            ),
        )
    return DatasetEntry(
        name=name,
        location=raw["location"],
        format=raw.get("format"),
        description=raw.get("description"),
        parents=tuple(raw.get("parents") or ()),
        load_options=dict(raw.get("load_options") or {}),
        save_options=dict(raw.get("save_options") or {}),
        fingerprint=raw.get("fingerprint"),
    )


def _cache_key(file: Path, stamp: Stamp) -> list[Any]:
    return [str(file), *stamp]


def _read_cache(
    cache_file: Path | None, file: Path, stamp: Stamp
) -> dict[str, DatasetEntry] | None:
    if cache_file is None:
        return None
    raw = catalog_cache.read(cache_file, _cache_key(file, stamp))
    if raw is None:
        return None
    try:
        return {name: _rebuild(name, entry) for name, entry in raw.items()}
    except (KeyError, TypeError, ValueError):
        return None  # not what this version of dslc writes: parse the catalog again


def _write_cache(
    cache_file: Path | None, file: Path, stamp: Stamp, entries: Mapping[str, DatasetEntry]
) -> None:
    if cache_file is not None:
        raw = {name: e.to_yaml() for name, e in entries.items()}
        catalog_cache.write(cache_file, _cache_key(file, stamp), raw)


def _recent(stamp: Stamp) -> bool:
    """Modified so recently that a second write in the same timestamp tick could hide."""
    from .fingerprint import is_racy

    return is_racy(stamp[1])


def _entries(file: Path, cache_file: Path | None) -> dict[str, DatasetEntry]:
    """The parsed catalog, shared between callers: never mutate the result."""
    file = Path(file)
    try:
        st = file.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CatalogError(f"cannot read {file}: {exc.strerror or exc}") from None
    stamp = _stamp(st)
    with _memo_lock:
        hit = _memo.get(file)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    entries = _read_cache(cache_file, file, stamp)
    if entries is None:
        if st.st_size > MAX_BYTES:
            raise CatalogError(f"{file}: larger than {MAX_BYTES >> 20} MiB; is it a catalog?")
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"cannot read {file}: {exc}") from None
        entries = _validate(file, _parse_yaml(text, file))
        if not _recent(stamp):
            _write_cache(cache_file, file, stamp, entries)
    if not _recent(stamp):
        with _memo_lock:
            _memo[file] = (stamp, entries)
    return entries


def cache_path(root: Path) -> Path:
    """Where the parsed catalog of the project at ``root`` is kept between processes."""
    from . import config

    return config.state_dir(root) / "catalog-cache.json"


def read(file: Path, cache_file: Path | None = None) -> dict[str, DatasetEntry]:
    """Parse and validate the catalog; an absent or empty file is an empty catalog.

    Args:
        file: the catalog, ``<root>/data/catalog.yml``.
        cache_file: where to keep the parsed catalog between processes (``None``: only in
            this process).

    Raises:
        CatalogError: invalid YAML, wrong types, unknown keys, unknown parents or cycles,
            in one line naming the file, the entry and the problem.
    """
    return dict(_entries(file, cache_file))


def get(file: Path, name: str, cache_file: Path | None = None) -> DatasetEntry | None:
    """The entry called ``name``, or None; as cheap as a ``stat`` once the file is parsed."""
    return _entries(file, cache_file).get(name)


def names(file: Path, cache_file: Path | None = None) -> list[str]:
    """The dataset names, in file order."""
    return list(_entries(file, cache_file))


def write(file: Path, entries: Mapping[str, DatasetEntry], cache_file: Path | None = None) -> None:
    """Atomically rewrite the catalog with ``entries`` (keeping the leading comments)."""
    import yaml

    file = Path(file)
    _check_graph(file, entries)
    try:
        header, _ = _split_header(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        header = ""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    body = yaml.dump(
        {"datasets": {name: e.to_yaml() for name, e in entries.items()}},
        Dumper=dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    file.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(file, header + body)
    # We know what the new file holds: remember it, so the next lookup does not parse it.
    # (Another write within the same timestamp tick would also change size, inode or ctime.)
    stamp = _stamp(file.stat())
    frozen = dict(entries)
    with _memo_lock:
        _memo[file] = (stamp, frozen)
    _write_cache(cache_file, file, stamp, frozen)


def _split_header(text: str) -> tuple[str, str]:
    """Leading comment block (kept on rewrite: it usually documents the schema) and body."""
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
        i += 1
    return "".join(lines[:i]), "".join(lines[i:])


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Serialise read-modify-write of the catalog across processes (POSIX advisory lock).

    ``lock_file`` lives in the project's state folder (``.dslc``), not next to the data.

    Without it, two runs saving different datasets at once could each drop the other's
    fingerprint update. On platforms without fcntl the lock is a no-op.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    Path(lock_file).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
