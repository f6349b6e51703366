"""`dslc tracking-server`: settings from .env, the database checked first, one-line errors.

The server itself (mlflow on PostgreSQL, 8 clients) runs in the template's
tests/test_postgres.py; here `os.execve` is replaced, so nothing is started.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from pgcluster import Cluster

from dslc import _mlflow_cli, cli

PASSWORD = "Pw-0f-the-server"
SETTINGS = (
    "MLFLOW_DATABASE_URL", "MLFLOW_DATABASE_PASSWORD", "MLFLOW_ARTIFACTS_DESTINATION",
    "MLFLOW_HOST", "MLFLOW_PORT", "MLFLOW_WORKERS", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION",
    "MLFLOW_BACKEND_STORE_URI",
)  # fmt: skip


# What `mlflow server` would have been started with: (command line, environment).
STARTED: list[tuple[list[str], dict[str, str]]] = []


@pytest.fixture
def server_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose environment has none of the server's settings; exec recorded."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    STARTED.clear()

    def execve(path: str, args: list[str], env: dict[str, str]) -> None:
        STARTED.append((list(args), dict(env)))

    monkeypatch.setattr(os, "execve", execve)
    return project


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def _env(project: Path, **values: str) -> None:
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def _one_error_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = cli.main(["tracking-server", *argv])
    out, err = capsys.readouterr()
    assert code == 1 and out == "", (code, out, err)
    assert err.startswith("dslc: error: ") and err.count("\n") == 1, err
    assert not STARTED, "mlflow must not start"
    return err


def _sqlite(project: Path) -> str:
    return f"sqlite:///{project / 'server.db'}"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, "MLFLOW_DATABASE_URL is not set: add it to .env as postgresql+psycopg://"),
        ({"MLFLOW_DATABASE_URL": "  "}, "MLFLOW_DATABASE_URL is not set"),
        ({"MLFLOW_DATABASE_URL": "sqlite:///x.db"}, "MLFLOW_ARTIFACTS_DESTINATION is not set"),
        (
            {"MLFLOW_DATABASE_URL": f"mlflow:{PASSWORD} at db-host",
             "MLFLOW_ARTIFACTS_DESTINATION": "a"},
            "MLFLOW_DATABASE_URL in .env is not a database URL",
        ),
        (
            {"MLFLOW_DATABASE_URL": f"postgresql://mlflow:{PASSWORD}@db-host/mlflow",
             "MLFLOW_ARTIFACTS_DESTINATION": "a"},
            "must start with postgresql+psycopg://",
        ),
        (
            {"MLFLOW_DATABASE_URL": "postgres://mlflow@db-host/mlflow",
             "MLFLOW_ARTIFACTS_DESTINATION": "a"},
            "must start with postgresql+psycopg://",
        ),
        (
            {"MLFLOW_DATABASE_URL": "sqlite:///x.db", "MLFLOW_ARTIFACTS_DESTINATION": "a",
             "MLFLOW_PORT": "http"},
            "MLFLOW_PORT='http' is not a whole number from 1 to 65535",
        ),
        (
            {"MLFLOW_DATABASE_URL": "sqlite:///x.db", "MLFLOW_ARTIFACTS_DESTINATION": "a",
             "MLFLOW_WORKERS": "0"},
            "MLFLOW_WORKERS='0' is not a whole number from 1 to 64",
        ),
    ],
)  # fmt: skip
def test_missing_or_malformed_settings_in_env_file(
    server_project: Path,
    capsys: pytest.CaptureFixture[str],
    settings: dict[str, str],
    expected: str,
) -> None:
    pytest.importorskip("mlflow")
    _env(server_project, **settings)
    err = _one_error_line(capsys)
    assert expected in err
    assert PASSWORD not in err
    assert not (server_project / "x.db").exists()


def test_environment_wins_over_env_file_and_the_file_is_found_from_a_subfolder(
    server_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow")
    _env(server_project, MLFLOW_DATABASE_URL="not a url", MLFLOW_ARTIFACTS_DESTINATION="art")
    monkeypatch.setenv("MLFLOW_DATABASE_URL", _sqlite(server_project))
    monkeypatch.chdir(server_project / "notebooks")
    port = _closed_port()
    assert cli.main(["tracking-server", "--port", str(port), "--workers", "3"]) == 0
    ((args, env),) = STARTED
    assert env["MLFLOW_BACKEND_STORE_URI"] == _sqlite(server_project)
    # A relative folder is the project root's, wherever the command runs.
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == str(server_project / "art")
    assert (env["MLFLOW_HOST"], env["MLFLOW_PORT"], env["MLFLOW_WORKERS"]) == (
        "127.0.0.1", str(port), "3",
    )  # fmt: skip
    assert args[1:] == ["-m", "mlflow", "server", "--serve-artifacts"]
    err = capsys.readouterr().err
    assert f"MLflow tracking server on 127.0.0.1:{port} (3 worker(s))" in err


def test_defaults_one_worker_per_core_no_job_runner_and_url_only_in_environment(
    server_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow")
    url = f"sqlite:///{server_project / 'server.db'}"
    _env(server_project, MLFLOW_DATABASE_URL=url, MLFLOW_ARTIFACTS_DESTINATION="s3://b/m",
         MLFLOW_PORT=str(_closed_port()))  # fmt: skip
    assert cli.main(["tracking-server"]) == 0
    ((args, env),) = STARTED
    assert env["MLFLOW_WORKERS"] == str(_mlflow_cli.cores())
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == "s3://b/m"
    assert not any("sqlite" in a or "server.db" in a for a in args)


def test_unreachable_database_fails_in_one_line_without_the_password(
    server_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql+psycopg://mlflow@127.0.0.1:{_closed_port()}/mlflow"
    _env(server_project, MLFLOW_DATABASE_URL=url, MLFLOW_DATABASE_PASSWORD=PASSWORD,
         MLFLOW_ARTIFACTS_DESTINATION="art", MLFLOW_PORT=str(_closed_port()))  # fmt: skip
    err = _one_error_line(capsys)
    assert "cannot connect to the MLflow database postgresql+psycopg://***@127.0.0.1:" in err
    assert "Connection refused" in err and PASSWORD not in err


@pytest.mark.parametrize(
    ("driver", "hint"),
    [("postgresql+pg8000", "uv add --group server pg8000"),
     ("mysql+mysqldb", "uv add --group server mysqlclient")],
)  # fmt: skip
def test_missing_driver_names_the_uv_add_line(
    server_project: Path, capsys: pytest.CaptureFixture[str], driver: str, hint: str
) -> None:
    for module in ("pg8000", "MySQLdb"):
        if module in sys.modules or _importable(module):
            pytest.skip(f"{module} is installed here")
    _env(server_project, MLFLOW_DATABASE_URL=f"{driver}://u:{PASSWORD}@127.0.0.1:1/db",
         MLFLOW_ARTIFACTS_DESTINATION="art", MLFLOW_PORT=str(_closed_port()))  # fmt: skip
    err = _one_error_line(capsys)
    assert f"no driver for {driver}" in err and hint in err and PASSWORD not in err


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_port_in_use_and_bad_arguments(
    server_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow")
    _env(server_project, MLFLOW_DATABASE_URL=_sqlite(server_project),
         MLFLOW_ARTIFACTS_DESTINATION="art")  # fmt: skip
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        err = _one_error_line(capsys, "--port", str(busy.getsockname()[1]))
    assert "cannot listen on 127.0.0.1:" in err
    for argv in (["--port", "99999"], ["--workers", "0"], ["--host", "a b"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["tracking-server", *argv])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.startswith(f"dslc: error: argument {argv[0]}")
        assert err.count("\n") == 1


def test_wrong_and_right_password_on_a_real_postgresql(
    server_project: Path,
    pg: Cluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("psycopg")
    pytest.importorskip("mlflow")
    url = f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/postgres"
    common: dict[str, Any] = {
        "MLFLOW_DATABASE_URL": url,
        "MLFLOW_ARTIFACTS_DESTINATION": "art",
        "MLFLOW_PORT": str(_closed_port()),
    }
    _env(server_project, **common, MLFLOW_DATABASE_PASSWORD=PASSWORD)
    err = _one_error_line(capsys)
    assert "password authentication failed" in err and PASSWORD not in err
    monkeypatch.setenv("MLFLOW_DATABASE_PASSWORD", pg.password)  # the environment wins
    assert cli.main(["tracking-server"]) == 0
    ((args, env),) = STARTED
    assert env["MLFLOW_BACKEND_STORE_URI"] == url.replace("postgres@", f"postgres:{pg.password}@")
    assert pg.password not in " ".join(args) + capsys.readouterr().err
