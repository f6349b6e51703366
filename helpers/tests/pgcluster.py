"""A throwaway PostgreSQL cluster on loopback, for the tests of dslc and of the template.

The one implementation: helpers/tests uses it directly, the template's tests/postgres.py
loads it by path (dslc's tests cannot import from the template's), and so do
benchmarks/bench_sql.py and benchmarks/bench_server_logging.py.

Uses the server binaries of Debian's ``postgresql`` package (``/usr/lib/postgresql/*/bin``,
or ``PG_BINDIR``). ``initdb`` refuses to run as root, so as root the cluster runs as the
``postgres`` user (``runuser``). Password authentication (scram-sha-256) over TCP on
127.0.0.1, a socket folder and a data folder of its own, a free port; everything is
removed when the context ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


class Unavailable(RuntimeError):
    """No PostgreSQL server can be started here (the message says why)."""


@dataclass(frozen=True)
class Cluster:
    """A running cluster: the superuser ``postgres`` logs in with ``password``."""

    host: str
    port: int
    password: str
    bindir: Path

    def url(self, user: str = "postgres", password: str | None = None, db: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver)."""
        pw = self.password if password is None else password
        return f"postgresql+psycopg://{user}:{pw}@{self.host}:{self.port}/{db}"

    def dsn(self, db: str = "postgres") -> str:
        """libpq connection string for the superuser (psycopg.connect)."""
        return (
            f"host={self.host} port={self.port} user=postgres password={self.password} dbname={db}"
        )

    def _client(self, program: str, *args: str) -> str:
        """Run one of PostgreSQL's client programs as the superuser; return its output.

        For suites without psycopg (the template's): libpq's programs need no Python driver.
        """
        connection = ["--host", self.host, "--port", str(self.port), "--username", "postgres"]
        result = subprocess.run(
            [str(self.bindir / program), *connection, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
            env={**os.environ, "PGPASSWORD": self.password},
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser; return psql's unaligned output (rows, `|` between)."""
        return self._client(
            "psql", "--no-psqlrc", "--tuples-only", "--no-align", "--quiet",
            "--set", "ON_ERROR_STOP=1", "--dbname", database, "--command", sql,
        )  # fmt: skip

    def dump(self, database: str) -> str:
        """Everything a database holds, as SQL text (schema and rows)."""
        return self._client("pg_dump", database)

    def create_database(self, name: str, owner: str, password: str) -> str:
        """A role with a password owning a new database; returns the owner's URL."""
        self.psql(f"CREATE ROLE {owner} LOGIN PASSWORD '{password}'")
        self.psql(f"CREATE DATABASE {name} OWNER {owner}")
        return self.url(owner, quote(password, safe=""), name)

    def drop_database(self, name: str, owner: str) -> None:
        """Undo :meth:`create_database`, so that a later fixture can make the same names."""
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.psql(f"DROP ROLE IF EXISTS {owner}")


def find_bindir() -> Path | None:
    """The newest PostgreSQL server binaries, or None."""
    env = os.environ.get("PG_BINDIR")
    candidates = [Path(env)] if env else []

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Settings of a cluster that lives for a test run only: no crash safety needed.
THROWAWAY = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


@contextlib.contextmanager
def throwaway_cluster(durable: bool = False) -> Iterator[Cluster]:
    """Start a cluster; stop it and delete its files on exit.

    ``durable=True`` keeps fsync and synchronous commits on, for benchmarks that measure
    what a real server does.

    Raises:
        Unavailable: no server binaries, or (as root) no ``postgres`` user to run them.
    """
    bindir = find_bindir()
    if bindir is None:
        raise Unavailable(
            "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin); install Debian's "
            "postgresql package or set PG_BINDIR"
        )
    prefix: list[str] = []
    owner: tuple[int, int] | None = None
    if os.geteuid() == 0:
        import pwd

        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no 'postgres' user") from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise Unavailable("running as root and runuser is missing")
        prefix = [runuser, "-u", "postgres", "--"]
        owner = (entry.pw_uid, entry.pw_gid)
    base = Path(tempfile.mkdtemp(prefix="dslc-pg-"))
    try:
        data, sockets, pwfile = base / "data", base / "sock", base / "pw"
        sockets.mkdir()
        password = secrets.token_urlsafe(18)
        pwfile.write_text(password + "\n")
        if owner is not None:
            for p in (base, sockets, pwfile):
                os.chown(p, *owner)
        run = {"check": True, "capture_output": True, "text": True, "cwd": base}
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "-A", "scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C",
             "--no-sync"],
            **run,
        )  # fmt: skip
        for attempt in range(5):
            port = free_port()
            # 200 connections: a tracking server's workers and eight clients' pools.
            opts = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=200"
            opts += "" if durable else f" {THROWAWAY}"
            started = subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"),
                 "-o", opts, "-w", "-t", "120", "start"],
                **{**run, "check": False},
            )  # fmt: skip
            if started.returncode == 0:
                break
            if attempt == 4:
                log = (base / "log").read_text(errors="replace")[-2000:]
                raise Unavailable(f"pg_ctl start failed: {started.stderr.strip()} {log}")
        try:
            yield Cluster("127.0.0.1", port, password, bindir)
        finally:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                 "stop"],
                capture_output=True, cwd=base,
            )  # fmt: skip
    finally:
        shutil.rmtree(base, ignore_errors=True)
