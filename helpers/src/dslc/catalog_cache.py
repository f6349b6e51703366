"""The parsed catalog between processes: ``<root>/.dslc/catalog-cache.json``.

Parsing the YAML of a 20,000-entry catalog takes seconds; reading this JSON, a fraction of
that. It holds the validated entries in their YAML form under a key (the catalog's path,
size, mtime, ctime and inode), so a changed catalog never matches. Values JSON has no type
for (dates, bytes, sets, mappings with non-text keys) are tagged, so they come back as
they were parsed. An absent, stale or damaged cache is simply not used.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import atomic

VERSION = 1
Raw = dict[str, dict[str, Any]]  # entry name -> the entry as written in the YAML file


def read(cache_file: Path, key: list[Any]) -> Raw | None:
    """The entries stored under ``key``, or None (no cache, another key, damaged)."""
    try:
        doc = json.loads(cache_file.read_text(encoding="utf-8"))
        if doc.get("version") != VERSION or doc.get("key") != key:
            return None
        entries = _unjson(doc["entries"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return entries if isinstance(entries, dict) else None


def write(cache_file: Path, key: list[Any], entries: Mapping[str, Mapping[str, Any]]) -> None:
    """Store ``entries`` under ``key``; failures are ignored (the cache only saves time)."""
    try:
        body = {name: _jsonable(dict(raw)) for name, raw in entries.items()}
        doc = {"version": VERSION, "key": key, "entries": body}
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(cache_file, json.dumps(doc, separators=(",", ":")))
    except (OSError, TypeError, ValueError):
        pass  # a read-only project still works, parsing each time


def _jsonable(obj: Any) -> Any:
    """YAML's safe types as JSON, tagged where JSON has no equivalent."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _jsonable(v) for k, v in obj.items()}
        return {"$map": [[_jsonable(k), _jsonable(v)] for k, v in obj.items()]}
    if isinstance(obj, dt.datetime):
        return {"$datetime": obj.isoformat()}
    if isinstance(obj, dt.date):
        return {"$date": obj.isoformat()}
    if isinstance(obj, bytes):
        return {"$bytes": base64.b64encode(obj).decode("ascii")}
    if isinstance(obj, set | frozenset):
        return {"$set": [_jsonable(v) for v in obj]}
    raise TypeError(type(obj).__name__)


def _unjson(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_unjson(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        ((tag, value),) = obj.items()
        if tag == "$map":
            return {_hashable(_unjson(k)): _unjson(v) for k, v in value}
        if tag == "$datetime":
            return dt.datetime.fromisoformat(value)
        if tag == "$date":
            return dt.date.fromisoformat(value)
        if tag == "$bytes":
            return base64.b64decode(value)
        if tag == "$set":
            return {_hashable(_unjson(v)) for v in value}
    return {k: _unjson(v) for k, v in obj.items()}


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
