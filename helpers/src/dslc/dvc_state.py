"""DVC's hash state, read and written by dslc: a file either tool has hashed is not hashed
again by the other.

DVC 3 remembers the md5 of every file it hashes or checks out in a SQLite database outside
the project (dvc-data's ``State``: a diskcache ``Cache`` table in
``<site cache>/repo/<token>/hashes/local/cache.db``). Each row is keyed by the file's
absolute path and holds a checksum of its inode, mtime and size, so an entry only counts
while the file is unchanged. dslc adds the md5 it computes in the same read as its own
fingerprint, so ``dvc add`` and a stage's commit find it instead of reading the file, and
reads the md5 DVC recorded when it rewrote a file (its cache holds a copy: new inode,
new times), so dslc need not read that copy either.

That database is DVC's internal format, not an API. It is read and written exactly as
dvc-data 3 does, only with DVC 3 installed (projects pin ``dvc<4``); the template's tests
check with the real DVC that nothing is hashed twice. Anything unexpected (no database
yet, another layout, a locked or read-only file) turns sharing off for that call, and DVC
then hashes the file itself, as it would without dslc. ``DSLC_DVC_STATE=off`` turns
sharing off altogether.

Like DVC, dslc trusts this database for files it did not write itself: ``dslc data
verify`` re-reads every file and checks fingerprints without it.
"""

from __future__ import annotations

import configparser
import functools
import getpass
import hashlib
import json
import logging
import os
import sqlite3
import sys
from pathlib import Path

_log = logging.getLogger(__name__)

SWITCH = "DSLC_DVC_STATE"  # "off": never read or write DVC's state
_HASH_VERSION = 1  # dvc-data's State.HASH_VERSION
_BUSY_TIMEOUT_S = 2.0  # DVC holds the database only briefly; never wait long for it
_UPSERT = (
    # dvc-data's own HashesCache.set_many statement: a raw text key and a raw text value.
    "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, tag, mode, filename,"
    " value) VALUES (?, 1, 0, null, 0, null, 1, null, ?)"
    " ON CONFLICT(key, raw) DO UPDATE SET value = excluded.value"
)


def checksum(st: os.stat_result) -> str:
    """DVC's token for a file's identity: fsspec's ``tokenize([inode, mtime, size])``."""
    token = hashlib.md5(
        str(([st.st_ino, st.st_mtime, st.st_size],)).encode(), usedforsecurity=False
    )
    return str(int(token.hexdigest(), 16))


@functools.cache
def _dvc_3() -> bool:
    """DVC 3 and dvc-data 3 are installed: the versions whose state format this reads."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {version(name).split(".")[0] for name in ("dvc", "dvc-data")} == {"3"}
    except PackageNotFoundError:
        return False


def _config_dirs(root: Path) -> list[Path]:
    """DVC's config folders, weakest first: system, global, the project's."""
    import platformdirs  # a dependency of DVC's, so present wherever DVC is

    system = os.getenv("DVC_SYSTEM_CONFIG_DIR") or platformdirs.site_config_dir("dvc", "iterative")
    user = os.getenv("DVC_GLOBAL_CONFIG_DIR") or platformdirs.user_config_dir("dvc", "iterative")
    return [Path(system), Path(user), root / ".dvc"]


def _configured_site_cache(root: Path) -> str | None:
    """``core.site_cache_dir`` as DVC's configs set it (config.local over config...)."""
    found: str | None = None
    files = [d / "config" for d in _config_dirs(root)] + [root / ".dvc" / "config.local"]
    for file in files:
        if not file.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(file, encoding="utf-8")  # configparser.Error: the caller gives up
        found = parser.get("core", "site_cache_dir", fallback=found)
    return found


def _site_cache_dir(root: Path) -> Path | None:
    """DVC's ``site_cache_dir`` (dvc/dirs.py); None where it is relative (DVC would
    resolve it from its working folder)."""
    chosen = os.getenv("DVC_SITE_CACHE_DIR") or _configured_site_cache(root)
    if chosen:
        return Path(chosen) if os.path.isabs(chosen) else None
    if os.name == "posix" and sys.platform != "darwin":
        return Path("/var/tmp/dvc")  # DVC keeps this path on Linux and BSDs
    import platformdirs

    return Path(platformdirs.site_cache_dir("dvc", "iterative", opinion=True))


_found: dict[Path, Path] = {}  # project root -> its state database, once found


def _database(root: Path) -> Path | None:
    """Where DVC keeps the hash state of the project at ``root``, if DVC has made it (on
    its first start in the project); None otherwise, and looked for again next time."""
    known = _found.get(root)
    if known is not None and known.is_file():
        return known
    found = _locate(root)
    if found is not None:
        _found[root] = found
    return found


def _locate(root: Path) -> Path | None:
    """dvc/repo's ``site_cache_dir`` of the project, and the database in it."""
    if not _dvc_3():
        return None
    try:
        # DVC creates this empty file on its first start in a project and names the
        # project's state folder after its mtime (not all systems have a birth time).
        btime = os.path.getmtime(root / ".dvc" / "tmp" / "btime")
        base = _site_cache_dir(root)
    except (OSError, configparser.Error, ValueError):
        return None
    if base is None:
        return None
    identity = (os.path.realpath(root), None, btime, getpass.getuser(), 3, 0)
    token = hashlib.md5(str(identity).encode(), usedforsecurity=False).hexdigest()
    file = base / "repo" / token / "hashes" / "local" / "cache.db"
    return file if file.is_file() else None


class State:
    """DVC's hash state of one project, open for reading and adding entries.

    Every method is best effort: a failure is logged at debug level and treated as "no
    entry", so the worst outcome is a file hashed once more.
    """

    def __init__(self, root: Path, database: Path) -> None:
        self._root = os.path.abspath(root)
        self._real_root = os.path.realpath(root)  # DVC's root: its working folder, resolved
        self._database = database
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def open(cls, root: Path) -> State | None:
        """The state of the project at ``root``, or None when it cannot be shared."""
        if os.environ.get(SWITCH, "").strip().lower() in {"off", "0", "false", "no"}:
            return None
        database = _database(Path(root).absolute())
        return cls(root, database) if database is not None else None

    def _key(self, path: Path) -> str:
        """DVC's key: the project's real path joined with the path inside the project."""
        absolute = os.path.abspath(path)
        if os.path.commonpath([absolute, self._root]) == self._root:
            inside = os.path.relpath(absolute, self._root)
        else:  # reached through a link to the project: resolve both sides
            inside = os.path.relpath(os.path.realpath(absolute), self._real_root)
        return os.path.join(self._real_root, inside)

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = sqlite3.connect(
                self._database, timeout=_BUSY_TIMEOUT_S, isolation_level=None
            )
        return self._connection

    def md5(self, path: Path, st: os.stat_result) -> str | None:
        """The md5 DVC recorded for ``path`` while it had the identity ``st``."""
        try:
            row = (
                self._db()
                .execute("SELECT value FROM Cache WHERE key = ? AND raw = 1", (self._key(path),))
                .fetchone()
            )
            entry = json.loads(row[0]) if row and isinstance(row[0], str) else None
        except (sqlite3.Error, ValueError) as exc:
            _log.debug("DVC's hash state %s: %s", self._database, exc)
            return None
        if not isinstance(entry, dict) or entry.get("version") != _HASH_VERSION:
            return None  # unversioned entries are DVC 2's md5-dos2unix; newer are unknown
        hash_info = entry.get("hash_info")
        md5 = hash_info.get("md5") if isinstance(hash_info, dict) else None
        if entry.get("checksum") != checksum(st) or not isinstance(md5, str):
            return None
        return md5

    def record(self, path: Path, st: os.stat_result, md5: str) -> None:
        """Tell DVC that ``path``, while it has the identity ``st``, has this md5."""
        value = {
            "version": _HASH_VERSION,
            "checksum": checksum(st),
            "size": st.st_size,
            "hash_info": {"md5": md5},
        }
        try:
            self._db().execute(_UPSERT, (self._key(path), json.dumps(value)))
        except sqlite3.Error as exc:
            _log.debug("could not add to DVC's hash state %s: %s", self._database, exc)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
