"""`mlflow` commands run anywhere in a project use the project's store (dslc_mlflow.pth)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dslc import _mlflow_command as hook

HOOK_FILE = Path(hook.__file__).parents[1] / "dslc_mlflow.pth"


def default_experiment_location(store: Path) -> str:
    with sqlite3.connect(store) as db:
        [(location,)] = db.execute("select artifact_location from experiments where name = ?",
                                   ("Default",))  # fmt: skip
    return str(location)


@pytest.mark.parametrize(
    ("argv", "orig_argv", "expected"),
    [
        (["/p/.venv/bin/mlflow", "ui"], ["/p/.venv/bin/python", "/p/.venv/bin/mlflow", "ui"], True),
        (["mlflow"], ["python", "mlflow"], True),
        (["C:\\p\\.venv\\Scripts\\mlflow.exe", "ui"], ["python.exe", "mlflow.exe"], True),
        (["-m", "ui"], ["/p/.venv/bin/python", "-m", "mlflow", "ui"], True),
        (["-c"], ["python", "-c", "import mlflow"], False),
        (["train_mlflow.py"], ["python", "train_mlflow.py"], False),
        (["/p/.venv/bin/mlflow-gateway"], ["python", "/p/.venv/bin/mlflow-gateway"], False),
        (["-m"], ["python", "-m", "mlflow_extras"], False),
        ([], [], False),
    ],
)
def test_only_the_mlflow_program_is_recognised(
    argv: list[str], orig_argv: list[str], expected: bool
) -> None:
    assert hook.is_mlflow_command(argv, orig_argv) is expected


def test_from_a_subfolder_the_projects_store_is_used_and_made_right(project: Path) -> None:
    os.chdir(project / "notebooks")
    env: dict[str, str] = {}

    uri = hook.apply(env)

    assert uri == f"sqlite:///{(project / 'mlflow.db').as_posix()}"
    assert env == {
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_BACKEND_STORE_URI": uri,  # what `mlflow ui` and `mlflow server` read
        "MLFLOW_DEFAULT_ARTIFACT_ROOT": (project / "mlartifacts").as_uri(),
    }
    # The Default experiment keeps MLflow's default (dslc's runs never go there); the
    # folder is made only when something is logged there.
    expected = str(project / "notebooks" / "mlruns" / "0")
    assert default_experiment_location(project / "mlflow.db") == expected
    assert sorted(p.name for p in (project / "notebooks").iterdir()) == []


@pytest.mark.parametrize(
    ("environment", "dotenv"),
    [
        ({"MLFLOW_TRACKING_URI": "http://team:5000"}, "MLFLOW_TRACKING_URI=sqlite:///other.db\n"),
        ({}, "MLFLOW_TRACKING_URI=http://team:5000\nMLFLOW_TRACKING_PASSWORD=s3cret\n"),
    ],
)
def test_a_chosen_uri_wins_and_servers_are_left_alone(
    project: Path, environment: dict[str, str], dotenv: str
) -> None:
    (project / ".env").write_text(dotenv, encoding="utf-8")
    env = dict(environment)
    uri = hook.apply(env)
    if environment:  # set by the user: untouched, .env not even read
        assert uri is None and env == environment
    else:  # from .env, with the server's credentials
        assert env["MLFLOW_TRACKING_URI"] == uri == "http://team:5000"
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cret"
        assert "MLFLOW_BACKEND_STORE_URI" not in env
    assert not (project / "mlflow.db").exists()


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
    project: Path, argv: list[str], environment: dict[str, str]
) -> None:
    """`mlflow server --artifacts-destination X` run in a project proxies to X: the
    project's artifact root as a default would send every artifact to the project."""
    env = dict(environment)
    uri = hook.apply(env, argv)
    assert env == {**environment, "MLFLOW_TRACKING_URI": uri}


def test_outside_a_project_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env: dict[str, str] = {}
    assert hook.apply(env) is None and env == {}


def test_a_failure_never_stops_the_mlflow_command(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text("[tool.dslc\n", encoding="utf-8")  # broken TOML
    monkeypatch.setattr(sys, "argv", ["/p/.venv/bin/mlflow", "ui"])
    monkeypatch.setattr(hook, "apply", lambda argv: 1 / 0)
    hook.main()
    assert capsys.readouterr().err == (
        "dslc: could not point mlflow at the project's store: division by zero\n"
    )


def test_the_start_up_hook_is_one_line_that_imports_nothing_for_other_programs() -> None:
    lines = HOOK_FILE.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and lines[0].startswith("import sys;")
    probe = f"{lines[0]}\nprint('dslc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["script", "module"])
def test_mlflow_from_a_subfolder_lists_the_projects_experiments(project: Path, how: str) -> None:
    """End to end: the installed .pth makes MLflow's own command use the project's store."""
    from dslc import tracking

    tracking.ensure_store(project)
    tracking.client(project).create_experiment("churn-baseline")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DSLC_"))}
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow)] if how == "script" else [sys.executable, "-m", "mlflow"]
    listing = subprocess.run(
        [*command, "experiments", "search"],
        cwd=project / "notebooks",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "churn-baseline" in listing.stdout, listing.stdout + listing.stderr
    assert sorted(p.name for p in (project / "notebooks").iterdir()) == []
