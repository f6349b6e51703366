"""A throwaway PostgreSQL cluster on loopback, for the template's tests and benchmarks.

Debian's `postgresql` package ships the server binaries under
/usr/lib/postgresql/<version>/bin (not on PATH). `initdb` refuses to run as root, so
as root the cluster belongs to the `postgres` user (commands through `runuser`). The
cluster lives in a fresh folder under the system's temporary directory (a pytest
`tmp_path` is root-only, which the `postgres` user could not enter), listens on
127.0.0.1 on a free port with its socket in that folder, requires passwords over TCP,
and is removed at the end.

`.ci/run` installs the package when it is missing; elsewhere the tests that need a
cluster skip, saying why (on CI they fail instead: there they must run).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SUPERUSER = "postgres"
# Settings of a cluster that only lives for a test run: no durability, little memory.
THROWAWAY = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def server_bindir() -> Path | None:
    """The folder of the newest installed `initdb` and `pg_ctl`, or None."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def unavailable_reason() -> str | None:
    """Why no cluster can be started here, or None when one can."""
    if server_bindir() is None:
        return (
            "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin or on PATH;"
            " install Debian's `postgresql` package (.ci/run does)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return "running as root, which initdb refuses, and there is no `postgres` user"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A running cluster: connection details, and `psql` as its superuser."""

    def __init__(self, folder: Path, bindir: Path, port: int, password: str) -> None:
        self.folder = folder
        self.bindir = bindir
        self.port = port
        self.superuser_password = password
        self.data = folder / "data"
        self.sockets = folder / "sockets"
        self.log = folder / "server.log"

    def _connection(self) -> list[str]:
        return ["--host", str(self.sockets), "--port", str(self.port), "--username", SUPERUSER]

    def url(self, user: str, password: str, database: str, driver: str = "psycopg") -> str:
        """A SQLAlchemy URL over TCP on loopback (the password URL-quoted)."""
        from urllib.parse import quote

        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{user}:{quote(password, safe='')}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the cluster's socket; return the unaligned output."""
        command = [
            str(self.bindir / "psql"),
            "--no-psqlrc", "--tuples-only", "--no-align", "--quiet", "--set", "ON_ERROR_STOP=1",
            *self._connection(), "--dbname", database, "--command", sql,
        ]  # fmt: skip
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str, owner: str, password: str) -> str:
        """A role with a password owning a new database; return its psycopg URL."""
        self.psql(f"CREATE ROLE {owner} LOGIN PASSWORD '{password}'")
        self.psql(f"CREATE DATABASE {name} OWNER {owner}")
        return self.url(owner, password, name)

    def dump(self, database: str) -> str:
        """Everything a database holds, as SQL text (schema and rows)."""
        result = subprocess.run(
            [str(self.bindir / "pg_dump"), *self._connection(), database],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        return result.stdout


def _as_owner(args: list[str]) -> list[str]:
    """Run a server command as the cluster's owner: `postgres` when we are root."""
    return ["runuser", "-u", SUPERUSER, "--", *args] if os.geteuid() == 0 else args


@contextlib.contextmanager
def running_cluster(durable: bool = False) -> Iterator[Cluster]:
    """Create, start and finally stop and delete a cluster (see the module docstring).

    `durable=False` turns fsync and synchronous commits off, as a test run needs no
    crash safety; benchmarks pass True to measure what a real server does.
    """
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    bindir = server_bindir()
    assert bindir is not None
    folder = Path(tempfile.mkdtemp(prefix="ds-template-pg-"))
    password = secrets.token_urlsafe(16)
    try:
        cluster = Cluster(folder, bindir, free_port(), password)
        cluster.sockets.mkdir()
        pwfile = folder / "pwfile"
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SUPERUSER)
            for path in (folder, cluster.sockets, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        initdb = [
            str(bindir / "initdb"), "--pgdata", str(cluster.data),
            "--username", SUPERUSER, "--pwfile", str(pwfile),
            # Passwords over TCP (what the tests check); the owner's socket is trusted.
            "--auth-host", "scram-sha-256", "--auth-local", "trust",
            "--encoding", "UTF8", "--locale", "C", "--no-sync",
        ]  # fmt: skip
        made = subprocess.run(
            _as_owner(initdb), capture_output=True, text=True, check=False, timeout=300
        )
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr.strip()[-2000:]}")
        pwfile.unlink()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(cluster.port),
            "unix_socket_directories": str(cluster.sockets),
            "max_connections": "200",
            **({} if durable else THROWAWAY),
        }
        options = " ".join(f"-c {key}={value}" for key, value in settings.items())
        pg_ctl = [str(bindir / "pg_ctl"), "--pgdata", str(cluster.data)]
        started = subprocess.run(
            _as_owner([*pg_ctl, "--log", str(cluster.log), "-o", options, "--wait", "start"]),
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )
        if started.returncode != 0:
            log = cluster.log.read_text() if cluster.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr.strip()} {log[-2000:]}")
        try:
            yield cluster
        finally:
            subprocess.run(
                _as_owner([*pg_ctl, "--mode", "immediate", "--wait", "stop"]),
                capture_output=True,
                check=False,
                timeout=120,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One throwaway cluster for the whole test session (see the module docstring)."""
    reason = unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required on CI and cannot be had: {reason}")
        pytest.skip(reason)
    with running_cluster() as cluster:
        yield cluster
