"""`dslc mlflow ARGS...`: MLflow's own command line on the project's store, from any folder.

Nothing of dslc runs when `mlflow` itself starts: no `.pth` file, no `.env` read.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dslc import cli, tracking

# What MLflow would have been started with: (command line, environment).
Started = list[tuple[list[str], dict[str, str]]]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[Started]:
    """Record the exec of MLflow instead of running it."""
    seen: Started = []
    monkeypatch.setattr(os, "execve", lambda path, args, env: seen.append((list(args), env)))
    for name in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_DEFAULT_ARTIFACT_ROOT",
                 "MLFLOW_ARTIFACTS_DESTINATION"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    yield seen


def default_experiment_location(store: Path) -> str:
    with sqlite3.connect(store) as db:
        [(location,)] = db.execute("select artifact_location from experiments where name = ?",
                                   ("Default",))  # fmt: skip
    return str(location)


def test_from_a_subfolder_the_projects_store_is_used_and_made_right(
    project: Path, started: Started
) -> None:
    os.chdir(project / "notebooks")
    assert cli.main(["mlflow", "experiments", "search"]) == 0
    [(command, env)] = started
    uri = f"sqlite:///{(project / 'mlflow.db').as_posix()}"
    assert command == [sys.executable, "-m", "mlflow", "experiments", "search"]
    assert env["MLFLOW_TRACKING_URI"] == uri
    assert env["MLFLOW_BACKEND_STORE_URI"] == uri  # what `mlflow ui` and `mlflow server` read
    assert env["MLFLOW_DEFAULT_ARTIFACT_ROOT"] == (project / "mlartifacts").as_uri()
    # The Default experiment keeps MLflow's default (dslc's runs never go there: no public
    # route sets it); the folder is made only when something is logged there.
    expected = str(project / "notebooks" / "mlruns" / "0")
    assert default_experiment_location(project / "mlflow.db") == expected
    assert list((project / "notebooks").iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["-h"], ["ui", "--port", "5001", "--workers", "2"],
     ["runs", "list", "--experiment-id", "0", "--", "x"], []],
)  # fmt: skip
def test_every_argument_goes_to_mlflow_untouched(
    project: Path, started: Started, argv: list[str]
) -> None:
    assert cli.main(["mlflow", *argv]) == 0
    assert started[0][0][3:] == argv


@pytest.mark.parametrize(
    ("environment", "dotenv"),
    [
        ({"MLFLOW_TRACKING_URI": "http://team:5000"}, "MLFLOW_TRACKING_URI=sqlite:///other.db\n"),
        ({}, "MLFLOW_TRACKING_URI=http://team:5000\nMLFLOW_TRACKING_PASSWORD=s3cret\n"),
    ],
)
def test_a_chosen_uri_wins_and_servers_are_left_alone(
    project: Path,
    started: Started,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    dotenv: str,
) -> None:
    (project / ".env").write_text(dotenv, encoding="utf-8")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["mlflow", "experiments", "search"]) == 0
    [(_, env)] = started
    assert env["MLFLOW_TRACKING_URI"] == "http://team:5000"
    assert "MLFLOW_BACKEND_STORE_URI" not in env
    if not environment:  # from .env, with the server's credentials
        assert env["MLFLOW_TRACKING_PASSWORD"] == "s3cret"
    assert not (project / "mlflow.db").exists() and not (project / "other.db").exists()


@pytest.mark.parametrize(
    ("argv", "environment"),
    [
        (["server", "--backend-store-uri", "sqlite:////tmp/team.db"], {}),
        (["server", "--artifacts-destination=/srv/artifacts"], {}),
        (["ui", "--default-artifact-root", "s3://bucket/runs"], {}),
        (["server"], {"MLFLOW_ARTIFACTS_DESTINATION": "/srv/artifacts"}),
        (["server"], {"MLFLOW_BACKEND_STORE_URI": "postgresql://db/mlflow"}),
    ],
)
def test_a_server_with_a_store_of_its_own_gets_none_of_the_projects(
    project: Path,
    started: Started,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    environment: dict[str, str],
) -> None:
    """`mlflow server --artifacts-destination X` run in a project proxies to X: the
    project's artifact root as a default would send every artifact to the project."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["mlflow", *argv]) == 0
    [(_, env)] = started
    for name in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_DEFAULT_ARTIFACT_ROOT"):
        assert env.get(name) == environment.get(name)
    assert not (project / "mlflow.db").exists()


def test_outside_a_project_is_one_line(
    tmp_path: Path,
    started: Started,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["mlflow", "experiments", "search"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("dslc: error: no dslc project found at or above")
    assert err.count("\n") == 1 and started == [] and list(tmp_path.iterdir()) == []


def test_nothing_of_dslc_runs_at_interpreter_start() -> None:
    """No start-up hook: the only .pth an install may have is an editable install's
    path line (how Python finds the source), which runs nothing."""
    dist = importlib.metadata.distribution("dslc")
    hooks = [f for f in dist.files or () if f.suffix == ".pth"]
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    editable = bool(direct.get("dir_info", {}).get("editable"))
    assert len(hooks) <= int(editable), hooks
    lines = [line for f in hooks for line in Path(str(f.locate())).read_text().splitlines()]
    assert not [line for line in lines if line.startswith(("import ", "import\t"))], lines


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``argv`` run without the test's MLflow and dslc settings, plus ``env``."""
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DSLC_"))}
    return subprocess.run(argv, cwd=cwd, env={**bare, **env}, capture_output=True, text=True)


@pytest.mark.slow
def test_dslc_mlflow_from_a_subfolder_lists_the_projects_experiments(
    project: Path, tmp_path: Path
) -> None:
    """End to end: `dslc mlflow` runs MLflow's own command on the project's store, and
    an explicit MLFLOW_TRACKING_URI wins over it."""
    tracking.client(project).create_experiment("churn-baseline")
    dslc = [sys.executable, "-m", "dslc.cli", "mlflow", "experiments", "search"]
    listing = _run(dslc, project / "notebooks")
    assert listing.returncode == 0 and "churn-baseline" in listing.stdout, listing
    assert list((project / "notebooks").iterdir()) == []
    other = f"sqlite:///{tmp_path / 'other.db'}"
    listing = _run(dslc, project / "notebooks", MLFLOW_TRACKING_URI=other)
    assert listing.returncode == 0 and "Default" in listing.stdout, listing
    assert "churn-baseline" not in listing.stdout and (tmp_path / "other.db").is_file()
    failed = _run([*dslc[:-1], "nosuch"], project)
    assert failed.returncode == 2 and "No such command 'nosuch'" in failed.stderr  # MLflow's


@pytest.mark.slow
def test_plain_mlflow_reads_no_env_file_of_a_parent_folder(tmp_path: Path) -> None:
    """A hostile parent folder (`[tool.dslc]` and a `.env`) above a plain folder: plain
    `mlflow` uses MLflow's own default there and never the parent's settings."""
    hostile = tmp_path / "hostile"
    (hostile / "plain").mkdir(parents=True)
    (hostile / "pyproject.toml").write_text("[tool.dslc]\n", encoding="utf-8")
    planted = hostile / "planted.db"
    (hostile / ".env").write_text(f"MLFLOW_TRACKING_URI=sqlite:///{planted}\n", encoding="utf-8")
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    listing = _run([mlflow, "experiments", "search"], hostile / "plain")
    assert listing.returncode == 0, listing
    assert not planted.exists()
    assert (hostile / "plain" / "mlflow.db").is_file()  # MLflow's own default
