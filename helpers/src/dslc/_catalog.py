"""The data catalog file (``data/catalog.yml``): its rules, reading and rewriting. The YAML
is untrusted data; its rules are pydantic models, imported on the first parse."""

from __future__ import annotations

import contextlib
import functools
import graphlib
import re
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any

from . import _atomic as atomic
from . import _formats as formats
from . import config
from .errors import CatalogError, DslcError

MAX_NAME = 100
MAX_BYTES = 64 << 20  # a 20,000-entry catalog is about 4 MiB
MAX_DEPTH = 32  # a catalog needs about 6 levels of YAML; far deeper is an attack or a slip
NAME_RE = re.compile(rf"[A-Za-z][A-Za-z0-9_-]{{0,{MAX_NAME - 1}}}")  # used with fullmatch
# C0 and C1 control characters, DEL, and the Unicode bidirectional overrides that can make
# a terminal show text other than what is stored ("Trojan source").
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_KINDS = {"file": "a file dataset", "sql": "a SQL source", "snapshot": "a snapshot"}
_OPTIONS = "must be a mapping of keyword arguments"
# What a field must be: the one-line message when its type or pattern is wrong (it never
# repeats the value, which for 'connection' may be a URL with a password).
_HINTS = {
    "location": "must be a path relative to data/ or a URL (or give 'connection' for SQL)",
    "format": "must be a format name such as csv or parquet",
    "parents": "must be a list of dataset names",
    "load_options": _OPTIONS,
    "save_options": _OPTIONS,
    "fingerprint": "must look like 'sha256:<hex>'",
    "connection": "must be the name of an environment variable (such as WAREHOUSE_URL) that "
    "holds the database URL, not the URL itself; put the URL in .env",
    "table": "must be a table name, optionally schema.table; use 'query' for anything else",
    "params": "must map parameter names (letters, digits, '_') to values",
    "chunksize": "must be a whole number of rows above 0",
}


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
        return {k: v for k, v in asdict(self).items() if v or (k == "rows" and v is not None)}


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
        out = {k: v for k, v in vars(self).items() if k not in ("name", "sql", "snapshots")}
        if self.sql is None:
            out["parents"] = list(self.parents)
        else:
            del out["location"], out["parents"], out["format"], out["save_options"]
            out = {**asdict(self.sql), **out, "snapshots": [s.to_yaml() for s in self.snapshots]}
        return {k: v for k, v in out.items() if v}

    def snapshot(self, ref: str) -> Snapshot:
        """The snapshot called ``ref`` (an id, or ``latest``); CatalogError if there is none."""
        if ref == "latest" and self.snapshots:
            return self.snapshots[-1]
        if found := [s for s in self.snapshots if s.id == ref]:
            return found[0]
        ids = ", ".join(s.id for s in self.snapshots[-5:]) or "none yet"
        raise CatalogError(
            f"dataset {self.name!r} has no snapshot {ref!r} (latest: {ids}); use one of those"
            f" ids, or take one with `dslc data snapshot {self.name}`"
        )


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise CatalogError(_bad_name(name))
    return name


def _bad_name(name: object) -> str:
    return (
        f"invalid dataset name {name!r}: use a letter then up to {MAX_NAME - 1} letters, "
        "digits, '_' or '-' (no '/' or '.', which mark paths)"
    )


@functools.cache
def _loader() -> type[Any]:
    """PyYAML's safe loader refusing deep nesting, aliases and duplicate keys (with
    PyYAML's Python ``Composer``: libyaml's recurses in C and crashes on deep input)."""
    import yaml
    from yaml.composer import Composer, ComposerError
    from yaml.constructor import ConstructorError

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # SafeLoader has Composer already

    class Loader(Composer, base):  # type: ignore[valid-type,misc]
        def __init__(self, stream: str) -> None:
            base.__init__(self, stream)
            Composer.__init__(self)
            self.depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            mark = self.peek_event().start_mark
            if self.check_event(yaml.AliasEvent):
                raise ComposerError(None, None, "aliases (*name) are not allowed here", mark)
            if self.depth >= MAX_DEPTH:
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            self.depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            if not isinstance(node, yaml.MappingNode):
                raise ConstructorError(None, None, "expected a mapping", node.start_mark)
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                mark = key_node.start_mark
                key = self.construct_object(key_node, deep=deep)  # PyYAML refuses merge keys
                if not isinstance(key, Hashable):
                    raise ConstructorError(None, None, "unhashable key", mark)
                if key in mapping:
                    raise ConstructorError(None, None, f"duplicate key {key!r}", mark)
                mapping[key] = self.construct_object(value_node, deep=deep)
            return mapping

    return Loader


# The rules' functions, run by pydantic after its type checks: a ValueError is one line.
def _text(value: str, control: re.Pattern[str] = _CONTROL) -> str:
    if control.search(value):
        raise ValueError("contains control characters; remove them")
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _format(value: str) -> str:
    try:
        return formats.normalize(value)
    except DslcError as exc:
        raise ValueError(str(exc)) from None


@functools.cache
def _schema() -> dict[str, Any]:
    """The catalog's rules as pydantic models, by kind (built on the first parse)."""
    from pydantic import AfterValidator as Then
    from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

    Text = Annotated[str, Then(_text)]
    Lines = Annotated[str, Then(functools.partial(_text, control=_CONTROL_BUT_LINES))]
    Fingerprint = Annotated[str, Field(pattern=r"^[a-z0-9_]+:[0-9a-f]+$")]
    Connection = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    Key = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    Params = dict[Key, Any]  # values go to the driver as bind parameters, which checks them
    Table = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")]

    class Rules(BaseModel):
        # strict: YAML's types are taken as they are (no "5" -> 5, no true -> 1).
        model_config = ConfigDict(extra="forbid", strict=True)

    class File(Rules):
        location: Text
        format: Annotated[str, Then(_format)] | None = None
        description: Lines | None = None
        parents: list[str] | None = None
        load_options: dict[str, Any] | None = None
        save_options: dict[str, Any] | None = None
        fingerprint: Fingerprint | None = None

    class Snap(Rules):
        id: Annotated[str, Field(pattern=r"^\d{8}T\d{6}Z(-\d{1,4})?$")]
        location: Text
        fingerprint: Fingerprint
        taken: Text
        connection: Connection
        query: Lines
        params: Params | None = None
        rows: Annotated[int, Field(ge=0)] | None = None

    class Sql(Rules):
        connection: Connection
        query: Lines | None = None
        table: Table | None = None
        params: Params | None = None
        chunksize: Annotated[int, Field(gt=0)] | None = None
        description: Lines | None = None
        load_options: dict[str, Any] | None = None
        snapshots: list[Snap] | None = None

        @model_validator(mode="after")
        def one_source(self) -> Sql:
            if (self.query is None) == (self.table is None):
                raise ValueError("a SQL source needs exactly one of 'query' and 'table'")
            reserved = sorted(set(self.load_options or ()) & {"sql", "con", "params", "chunksize"})
            if reserved:
                raise ValueError(
                    f"load_options may not set {', '.join(reserved)}: the entry's own keys do that"
                )
            return self

    def kind(raw: Any) -> str:
        return "sql" if isinstance(raw, dict) and "connection" in raw else "file"

    Entry = Annotated[
        Annotated[File, Tag("file")] | Annotated[Sql, Tag("sql")], Discriminator(kind)
    ]

    class Catalog(Rules):
        datasets: dict[Annotated[str, Field(pattern=f"^{NAME_RE.pattern}$")], Entry] | None = None

    return {"catalog": Catalog, "file": File, "sql": Sql, "snapshot": Snap}


def _problem(file: Path, error: Any) -> CatalogError:
    """A pydantic error as one line that names the entry and the field."""
    loc = list(error["loc"])
    if len(loc) < 2 or loc[0] != "datasets":
        return CatalogError(f"{file}: the top level must be a 'datasets:' mapping of entries")
    name, rest = loc[1], loc[2:]
    if rest[:1] == ["[key]"]:
        return CatalogError(f"{file}: {_bad_name(name)}")
    where, kind = f"{file}: dataset {name!r}: ", rest.pop(0) if rest else "file"
    if rest[:1] == ["snapshots"] and len(rest) > 2:
        where, kind, rest = f"{where}snapshot {rest[1] + 1}: ", "snapshot", rest[2:]
    key = rest[0] if rest else None
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(_schema()[kind].model_fields)
        problem = f"unknown key {key!r} for {_KINDS[kind]}; allowed: {allowed}"
    elif error["type"] == "value_error":
        problem = f"{key!r}: " * (key is not None) + str(error["ctx"]["error"])
    elif key is None:
        problem = "expected a mapping of keys such as location (a file) or connection (SQL)"
    elif error["type"] == "missing":
        problem = f"{key!r} is required; it {_HINTS.get(str(key), 'must be given')}"
    else:
        problem = f"{key!r} {_HINTS.get(str(key), error['msg'].lower())}"
    return CatalogError(where + problem)


def _parse(file: Path, text: str) -> dict[str, DatasetEntry]:
    import yaml
    from pydantic import ValidationError

    try:
        doc = yaml.load(text, Loader=_loader())  # a safe loader: see _loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogError(f"{file}: invalid YAML{at}: {problem}; fix the file") from None
    try:
        datasets = _schema()["catalog"].model_validate({} if doc is None else doc).datasets or {}
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        misspelt_first = min(errors, key=lambda e: e["type"] != "extra_forbidden")
        raise _problem(file, misspelt_first) from None
    entries = {n: _from_yaml(n, m.model_dump(exclude_none=True)) for n, m in datasets.items()}
    check_graph(file, entries)
    return entries


def _from_yaml(name: str, raw: Mapping[str, Any]) -> DatasetEntry:
    kept = dict(raw, parents=tuple(raw.get("parents", ())))
    if "connection" in raw:  # the source's keys move to sql; description, load_options stay
        sql = SqlSource(**{f.name: kept.pop(f.name) for f in fields(SqlSource) if f.name in raw})
        snapshots = tuple(Snapshot(**s) for s in raw.get("snapshots", ()))
        kept.update(location=f"sql://{sql.connection}", sql=sql, snapshots=snapshots)
    return DatasetEntry(name=name, **kept)


def check_graph(file: Path, entries: Mapping[str, DatasetEntry]) -> None:
    """Every parent exists and no dataset descends from itself."""
    for entry in entries.values():
        for parent in entry.parents:
            if parent not in entries:
                raise CatalogError(
                    f"{file}: dataset {entry.name!r}: parent {parent!r} is not in the catalog"
                )
    try:
        graphlib.TopologicalSorter({n: e.parents for n, e in entries.items()}).prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(reversed(exc.args[1]))  # graphlib walks from parent to child
        raise CatalogError(
            f"{file}: parents form a cycle: {cycle}; a dataset cannot descend from itself"
        ) from None


_memo: dict[str, tuple[list[int], dict[str, DatasetEntry]]] = {}  # get and set are atomic


def read(file: Path) -> dict[str, DatasetEntry]:
    """The valid catalog ``file`` (absent: no entries); a ``stat`` once the file is parsed."""
    file = Path(file)
    try:
        stamp = atomic.stamp_of(file.stat())
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CatalogError(f"cannot read {file}: {exc.strerror or exc}") from None
    if (hit := _memo.get(str(file))) and hit[0] == stamp:
        return dict(hit[1])
    if stamp[0] > MAX_BYTES:
        raise CatalogError(f"{file}: larger than {MAX_BYTES >> 20} MiB; is it a catalog?")
    try:
        text = atomic.read_regular(file).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read {file}: {exc}") from None
    entries = _parse(file, text)
    if not atomic.is_racy(stamp[1]):  # a second write in the same tick could hide
        _memo[str(file)] = (stamp, entries)
    return dict(entries)


def write(file: Path, entries: Mapping[str, DatasetEntry]) -> None:
    """Atomically rewrite the catalog with ``entries`` (keeping the leading comments)."""
    import yaml

    check_graph(file, entries)
    try:
        lines = atomic.read_regular(file).decode("utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        lines = []
    # The leading comment block usually documents the schema: keep it.
    n = next((i for i, line in enumerate(lines) if line.strip()[:1] not in ("", "#")), len(lines))
    doc = {"datasets": {name: e.to_yaml() for name, e in entries.items()}}
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    body = yaml.dump(doc, Dumper=dumper, sort_keys=False, allow_unicode=True)
    file.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(file, "".join(lines[:n]) + body)


@contextlib.contextmanager
def editing(root: Path) -> Iterator[dict[str, DatasetEntry]]:
    """``with editing(root) as entries:`` change ``entries``, written back (if changed and
    nothing raised) under the catalog lock, so two runs saving at once lose no change."""
    from filelock import FileLock

    file = config.paths(root).catalog
    with FileLock(config.state_dir(root) / "catalog.lock"):
        before = read(file)
        entries = dict(before)
        yield entries
        if entries != before:
            write(file, entries)
