"""Every command given hostile settings or secrets: one line, a few seconds, nothing leaked.

Each command runs as a user runs it (the `dslc` program in a subprocess, in a temporary
project), so what is checked is everything it prints, on success and on failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DSLC = [sys.executable, "-m", "dslc.cli"]
SECRET = "S3cret-Pw_9x"
SERVER_SETTINGS = ("MLFLOW_DATABASE_URL", "MLFLOW_DATABASE_PASSWORD", "MLFLOW_PORT",
                   "MLFLOW_WORKERS", "MLFLOW_HOST", "MLFLOW_ARTIFACTS_DESTINATION")  # fmt: skip


def dslc(project: Path, *argv: str, env: dict[str, str] | None = None, timeout: float = 30):
    environment = {k: v for k, v in os.environ.items() if k not in SERVER_SETTINGS}
    environment.update(env or {})
    return subprocess.run(
        [*DSLC, *argv], cwd=project, env=environment, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode not in (0, None), output
    assert len(output) == 1 and output[0].startswith("dslc: error: "), output
    assert "bug in dslc" not in output[0]
    return output[0]


# -- secrets in what commands print --------------------------------------------------

TRACKING_URIS = [
    f"https://bob:{SECRET}@mlflow.example.invalid/",
    f"https://mlflow.example.invalid/?token={SECRET}",
    f"https://mlflow.example.invalid/?access_token={SECRET}&x=1",
    f"postgresql://bob@db.example.invalid/mlflow?password={SECRET}",
    f"postgresql://bob@db.example.invalid/mlflow?sslmode=require&sslpassword={SECRET}",
]


@pytest.mark.parametrize("uri", TRACKING_URIS)
def test_info_never_prints_a_tracking_uris_credentials(project: Path, uri: str) -> None:
    result = dslc(project, "info", env={"MLFLOW_TRACKING_URI": uri})
    assert SECRET not in result.stdout + result.stderr
    assert "mlflow.example.invalid" in result.stdout or "db.example.invalid" in result.stdout


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://mlflow@127.0.0.1:1/db?password={SECRET}",
        f"postgresql+psycopg://mlflow:{SECRET}@127.0.0.1:1/db",
        f"postgresql+psycopg://mlflow@127.0.0.1:1/db?sslmode=require&sslpassword={SECRET}",
    ],
)
def test_tracking_server_never_prints_the_databases_password(project: Path, url: str) -> None:
    env = {"MLFLOW_DATABASE_URL": url, "MLFLOW_ARTIFACTS_DESTINATION": str(project / "art")}
    line = one_error_line(dslc(project, "tracking-server", env=env))
    assert SECRET not in line and "127.0.0.1" in line


# -- hostile settings ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["FIFO", "folder", "NUL", "latin-1"])
@pytest.mark.parametrize(
    "command", [["info"], ["runs"], ["ui", "--port", "1"], ["mlflow", "--version"]]
)
def test_an_env_file_that_is_not_a_file_of_settings_is_one_line(project, kind, command):
    env_file = project / ".env"
    if kind == "FIFO":
        os.mkfifo(env_file)
    elif kind == "folder":
        env_file.mkdir()
    else:
        env_file.write_bytes(b"A=1\nB=x\x00y\n" if kind == "NUL" else b"A=caf\xe9\n")
    line = one_error_line(dslc(project, *command, timeout=15))
    assert ".env" in line


@pytest.mark.parametrize("kind", ["FIFO", "folder"])
def test_a_pyproject_that_is_not_a_file_is_one_line(project: Path, kind: str) -> None:
    below = project / "notebooks" / "deeper"
    below.mkdir(parents=True)
    (below / "pyproject.toml").mkdir() if kind == "folder" else os.mkfifo(below / "pyproject.toml")
    line = one_error_line(dslc(below, "info", timeout=15))
    assert "pyproject.toml" in line and kind in line


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MLFLOW_PORT", "²"),
        ("MLFLOW_PORT", "\u0665\u0660\u0660\u0660"),  # Arabic-Indic: int() takes them
        ("MLFLOW_PORT", "50 00"),
        ("MLFLOW_PORT", "70000"),
        ("MLFLOW_WORKERS", "³"),
        ("MLFLOW_WORKERS", "-1"),
        ("MLFLOW_WORKERS", "1e3"),
        ("MLFLOW_HOST", "a b"),
    ],
)
def test_a_hostile_server_setting_is_one_line_naming_it(project: Path, name: str, value: str):
    env = {
        "MLFLOW_DATABASE_URL": "postgresql+psycopg://mlflow@127.0.0.1:1/db",
        "MLFLOW_ARTIFACTS_DESTINATION": str(project / "art"),
        name: value,
    }
    line = one_error_line(dslc(project, "tracking-server", env=env))
    assert name in line


def test_a_log_file_that_is_a_fifo_is_one_line(project: Path) -> None:
    os.mkfifo(project / "pipe.log")
    line = one_error_line(dslc(project, "info", env={"DSLC_LOG_FILE": "pipe.log"}, timeout=15))
    assert "DSLC_LOG_FILE" in line and "pipe.log" in line


def test_a_catalog_that_is_a_fifo_is_one_line(project: Path) -> None:
    catalog = project / "data" / "catalog.yml"
    catalog.unlink()
    os.mkfifo(catalog)
    for command in (["data", "list"], ["data", "verify"]):
        line = one_error_line(dslc(project, *command, timeout=15))
        assert "catalog.yml" in line and "FIFO" in line


def test_a_cache_that_is_a_fifo_is_ignored_not_waited_for(project: Path) -> None:
    (project / ".dslc").mkdir(exist_ok=True)
    os.mkfifo(project / ".dslc" / "fingerprints.json")
    for command in (["data", "list"], ["data", "verify"]):
        result = dslc(project, *command, timeout=15)
        assert result.returncode == 0, result.stdout + result.stderr


def test_log_lines_of_any_logger_are_scrubbed(project: Path) -> None:
    code = (
        "import logging; from dslc import setup_logging; setup_logging(log_file='run.log');"
        "logging.getLogger('somelib').warning('connecting to %s', "
        f"'postgresql://bob:{SECRET}@db/x?sslpassword={SECRET}')"
    )
    env = {**os.environ, "API_TOKEN": SECRET + "-tok"}
    result = subprocess.run([sys.executable, "-c", code], cwd=project, env=env,
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    written = result.stderr + (project / "run.log").read_text()
    assert "connecting to postgresql://***@db/x?sslpassword=***" in written, written
    assert SECRET not in written


def test_catalog_commands_never_print_a_locations_credentials(project: Path) -> None:
    url = f"https://bob:{SECRET}@example.invalid/x.csv?token={SECRET}-t&x=1"
    with (project / "data" / "catalog.yml").open("a") as catalog:
        catalog.write(f'  remote:\n    location: "{url}"\n')
    for command in (["data", "list"], ["data", "verify"], ["data", "verify", "--fast"]):
        result = dslc(project, *command, timeout=60)
        printed = result.stdout + result.stderr
        assert "example.invalid" in printed and SECRET not in printed, printed


@pytest.mark.parametrize("kind", ["FIFO", "folder"])
def test_a_tracking_store_that_is_not_a_file_is_one_line(project: Path, kind: str) -> None:
    store = project / "store.db"
    store.mkdir() if kind == "folder" else os.mkfifo(store)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    for command in (["runs"], ["serve", "--port", "5998"]):
        line = one_error_line(dslc(project, *command, env=env, timeout=30))
        assert "store.db is not a regular file" in line


def test_verify_makes_a_snapshot_left_writable_read_only_again(project: Path) -> None:
    """As a kill during `dvc add` of a new snapshot leaves it: writable."""
    snapshot = project / "data" / "raw" / "snapshots" / "sales" / "20260101T000000Z.parquet"
    snapshot.parent.mkdir(parents=True)
    snapshot.write_bytes(b"PAR1")
    snapshot.chmod(0o644)
    dslc(project, "data", "verify")
    assert snapshot.stat().st_mode & 0o777 == 0o444
