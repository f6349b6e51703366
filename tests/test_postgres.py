"""Slow: the team's MLflow server on a real PostgreSQL, run as a baked project's README says.

A throwaway cluster (tests/postgres.py) holds the server's database. `make tracking-server`
reads the server's settings from `.env`; the pipeline switches to it by the one
`MLFLOW_TRACKING_URI` line; eight clients log at once; and the database password never
shows up in the store, the artifacts, the server's output, a command line or an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.generated import ENV, sh
from tests.postgres import Cluster
from tests.servers import background, free_port
from tests.test_pipeline import runs

pytestmark = pytest.mark.slow

# The name clients use for the server machine; the server must accept it (allowed hosts).
SERVER_NAME = "mlflow-host.example"
CLIENTS = 8
STEPS = 1000


@dataclass
class TeamServer:
    uri: str  # the value of MLFLOW_TRACKING_URI in the clients' .env
    port: int
    password: str
    artifacts: Path
    log: Path


def _processes() -> dict[int, tuple[int, str]]:
    """Every process of this machine: pid -> (process group, command line)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            # Field 5 is the process group; the name before it may hold spaces.
            group = int(stat.read_text().rsplit(")", 1)[1].split()[2])
            command = stat.with_name("cmdline").read_bytes().replace(b"\0", b" ")
            found[int(stat.parent.name)] = (group, command.decode(errors="replace"))
    return found


def server_commands(port: int) -> list[str]:
    """The command lines of the processes of the server listening on `port`."""
    processes = _processes()
    (group,) = {
        group
        for group, command in processes.values()
        if "-m uvicorn" in command and f"--port {port} " in command
    }
    return [command for pid_group, command in processes.values() if pid_group == group]


def readme_env_lines(project: Path, first_key: str) -> list[str]:
    """The `.env` lines of the README's code block that starts with `first_key=`."""
    readme = (project / "README.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S):
        if block.startswith(f"{first_key}="):
            return [line.split(" #")[0].strip() for line in block.splitlines() if line.strip()]
    raise AssertionError(f"the README shows no .env block starting with {first_key}=")


def _set_tracking_uri(env_text: str, line: str) -> str:
    """The one line a client changes: `MLFLOW_TRACKING_URI=` becomes the server's URL."""
    changed, count = re.subn(r"^MLFLOW_TRACKING_URI=.*$", line, env_text, flags=re.M)
    assert count == 1, "the generated .env has no MLFLOW_TRACKING_URI line"
    return changed


@pytest.fixture(scope="module")
def team_server(own_project, postgres, tmp_path_factory):
    """`make tracking-server` on a PostgreSQL database, set up in .env as the README says.

    The README's lines are used, with this machine's values: the database of the
    throwaway cluster, made as the README says, on loopback; a free port; and the
    tests' clients, which use 127.0.0.1, among the allowed names. The same .env then
    points the project at the server by the README's client line, as on a machine that
    both runs the server and trains: the password sits beside everything.
    """
    password = "pg-" + secrets.token_urlsafe(12)
    folder = tmp_path_factory.mktemp("team-server")
    port = free_port()
    ours = f"{SERVER_NAME}:{port}"
    values = {
        "MLFLOW_DATABASE_URL": f"postgresql+psycopg://mlflow@127.0.0.1:{postgres.port}/mlflow",
        "MLFLOW_DATABASE_PASSWORD": password,
        "MLFLOW_ARTIFACTS_DESTINATION": str(folder / "artifacts"),
        "MLFLOW_HOST": "127.0.0.1",
        "MLFLOW_PORT": str(port),
        "MLFLOW_SERVER_ALLOWED_HOSTS": f"{ours},127.0.0.1:{port}",
        "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS": f"http://{ours}",
    }
    shown = readme_env_lines(own_project, "MLFLOW_DATABASE_URL")
    assert [line.split("=", 1)[0] for line in shown] == list(values)
    example = (own_project / ".env.example").read_text()
    assert all(f"# {key}=" in example for key in values), "keep .env.example in step"
    (client_line,) = readme_env_lines(own_project, "MLFLOW_TRACKING_URI")
    uri = f"http://127.0.0.1:{port}"
    assert client_line == "MLFLOW_TRACKING_URI=http://mlflow-host:5000"

    env_file = own_project / ".env"
    original = env_file.read_text()
    server_lines = "".join(f"{key}={value}\n" for key, value in values.items())
    client = client_line.replace("http://mlflow-host:5000", uri)
    env_file.write_text(_set_tracking_uri(original, client) + "\n" + server_lines)
    try:
        postgres.create_database("mlflow", "mlflow", password)  # the README's two statements
        log = folder / "server.log"
        started = time.monotonic()
        with background("make tracking-server", own_project, f"{uri}/health", log):
            print(f"make tracking-server answered after {time.monotonic() - started:.1f} s")
            yield TeamServer(uri, port, password, folder / "artifacts", log)
    finally:
        env_file.write_text(original)
        # test_tune.py uses this fixture too: a second module on this worker's cluster
        # makes the README's names again.
        postgres.drop_database("mlflow", "mlflow")


def test_make_train_and_predict_use_the_team_server_after_one_env_line(
    team_server,
    own_project,
    postgres,
):
    # FORCE=1: the README's way to log to a new tracking server (DVC would skip stages
    # that trained before; this project's own copy has not trained yet).
    result = sh("make train predict FORCE=1", own_project)
    assert team_server.password not in result.stdout + result.stderr

    summary = runs(own_project)
    assert summary["uri"] == team_server.uri
    (run,) = [run for run in summary["runs"] if run["name"].startswith("train")]
    assert run["status"] == "FINISHED" and "test_accuracy" in run["metrics"]
    # Artifacts go through the server (proxied) into its destination, not to this machine.
    assert run["artifact_uri"].startswith("mlflow-artifacts:/")
    assert "figures/confusion_matrix.png" in run["artifacts"]
    assert list(team_server.artifacts.rglob("confusion_matrix.png"))
    assert [model["run_id"] for model in summary["models"]] == [run["id"]]
    # Runs, params and the registry live in PostgreSQL.
    stored = postgres.psql(
        f"SELECT status FROM runs WHERE run_uuid = '{run['id']}';"
        f"SELECT value FROM params WHERE run_uuid = '{run['id']}' AND key = 'C';"
        "SELECT count(*) FROM model_versions;",
        database="mlflow",
    )
    assert stored.split() == ["FINISHED", "1.0", "1"]
    predictions = own_project / "data" / "processed" / "iris_predictions.csv"
    assert len(predictions.read_text().splitlines()) == 1 + 38


CLIENT = """
import sys
from dslc import tracking

client = int(sys.argv[1])
with tracking.run(name=f"client-{client}", experiment="concurrent-clients") as run:
    for step in range(%d):
        run.log_metric("loss", client + step / 1000, step=step)
"""


def test_eight_clients_log_a_thousand_steps_each_and_all_arrive(
    team_server,
    own_project,
    postgres,
    tmp_path,
):
    script = tmp_path / "client.py"
    script.write_text(CLIENT % STEPS)
    started = time.monotonic()
    clients = [
        subprocess.Popen(
            [".venv/bin/python", str(script), str(client)],
            cwd=own_project,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for client in range(CLIENTS)
    ]
    outputs = [client.communicate(timeout=600)[0] for client in clients]
    print(f"{CLIENTS} clients x {STEPS} steps: {time.monotonic() - started:.1f} s")
    assert [client.returncode for client in clients] == [0] * CLIENTS, outputs
    assert not any(team_server.password in output for output in outputs)

    # Counted where it is stored: one experiment (the eight raced to create it), every run
    # FINISHED, every step there once with the value its client sent.
    rows = postgres.psql(
        "SELECT r.name, r.status, count(*), count(DISTINCT m.step), min(m.step), max(m.step),"
        " round(sum(m.value)::numeric, 3)"
        " FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id"
        " JOIN metrics m ON m.run_uuid = r.run_uuid AND m.key = 'loss'"
        " WHERE e.name = 'concurrent-clients' GROUP BY r.name, r.status ORDER BY r.name",
        database="mlflow",
    )
    expected = [
        f"client-{c}|FINISHED|{STEPS}|{STEPS}|0|{STEPS - 1}|{STEPS * c + 499.5:.3f}"
        for c in range(CLIENTS)
    ]
    assert rows.split() == expected
    experiments = postgres.psql(
        "SELECT count(*) FROM experiments WHERE name = 'concurrent-clients'", database="mlflow"
    )
    assert experiments.strip() == "1"


LEAK_ATTEMPT = """
from dotenv import dotenv_values
from dslc import tracking

env = dotenv_values(".env")
password = env["MLFLOW_DATABASE_PASSWORD"]
url = env["MLFLOW_DATABASE_URL"].replace("://mlflow@", f"://mlflow:{password}@")
params = {"backend": url, "note": password}
with tracking.run(name="leak-attempt", params=params, tags={"backend": url}) as run:
    run.log_metric("ok", 1.0)
"""


def test_the_database_password_stays_out_of_store_artifacts_output_and_command_lines(
    team_server,
    own_project,
    postgres,
    tmp_path,
):
    """Even code that tries to log it (under innocent names) gets it withheld."""
    script = tmp_path / "leak.py"
    script.write_text(LEAK_ATTEMPT)
    result = sh(f".venv/bin/python {script}", own_project)
    assert team_server.password not in result.stdout + result.stderr

    dump = postgres.dump("mlflow")
    assert "leak-attempt" in dump and "dslc.withheld" in dump  # the run is there, censored
    assert team_server.password not in dump
    assert team_server.password not in team_server.log.read_text()
    for path in team_server.artifacts.rglob("*"):
        if path.is_file():
            assert team_server.password.encode() not in path.read_bytes(), path
    # The launcher hands the URL to mlflow in its environment: no command line shows it.
    for pid, (_, command) in _processes().items():
        assert team_server.password not in command, pid


def test_the_server_runs_one_worker_per_core_and_no_job_runner(team_server):
    """The defaults the README gives for a small machine (the test machine's cores)."""
    commands = server_commands(team_server.port)
    (uvicorn,) = [command for command in commands if "-m uvicorn" in command]
    assert f"--workers {len(os.sched_getaffinity(0))} " in uvicorn
    assert not [command for command in commands if "huey" in command or "_job_runner" in command]


def _status(url: str, headers: dict[str, str], body: dict | None = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    headers = {**headers, "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_server_answers_its_team_name_and_its_web_ui(team_server):
    """MLflow refuses unknown Host names, and changes sent from web pages elsewhere; the
    MLFLOW_SERVER_ALLOWED_HOSTS and ..._CORS_ALLOWED_ORIGINS lines of .env admit the team's.
    """
    search = f"{team_server.uri}/api/2.0/mlflow/experiments/search"
    ours, theirs = f"{SERVER_NAME}:{team_server.port}", f"elsewhere.example:{team_server.port}"
    assert _status(search + "?max_results=1", {"Host": ours}) == 200
    assert _status(search + "?max_results=1", {"Host": theirs}) == 403
    # A POST from the web UI carries its page's origin.
    ui, other = (
        {"Host": ours, "Origin": f"http://{ours}"},
        {"Host": ours, "Origin": f"http://{theirs}"},
    )
    assert _status(search, ui, {"max_results": 1}) == 200
    assert _status(search, other, {"max_results": 1}) == 403


@pytest.fixture(scope="module")
def probe_role(postgres):
    """A role and database for the error cases, apart from the running server's."""
    password = "probe-" + secrets.token_urlsafe(12)
    postgres.create_database("probe", "probe", password)
    return password


def _error_cases(cluster: Cluster, right: str, wrong: str) -> dict[str, tuple[dict, str]]:
    """Each case: the settings that break it, and what its one line must say."""
    base = f"postgresql+psycopg://probe@127.0.0.1:{cluster.port}"
    return {
        "no database URL": ({"MLFLOW_DATABASE_URL": ""}, "MLFLOW_DATABASE_URL is not set"),
        "no artifacts destination": (
            {"MLFLOW_DATABASE_URL": f"{base}/probe", "MLFLOW_DATABASE_PASSWORD": right,
             "MLFLOW_ARTIFACTS_DESTINATION": ""},
            "MLFLOW_ARTIFACTS_DESTINATION is not set",
        ),
        "wrong password": (
            {"MLFLOW_DATABASE_URL": f"{base}/probe", "MLFLOW_DATABASE_PASSWORD": wrong},
            "password authentication failed",
        ),
        "wrong password inside the URL": (
            {"MLFLOW_DATABASE_URL": base.replace("probe@", f"probe:{wrong}@") + "/probe",
             "MLFLOW_DATABASE_PASSWORD": ""},
            "password authentication failed",
        ),
        "unknown database": (
            {"MLFLOW_DATABASE_URL": f"{base}/nowhere", "MLFLOW_DATABASE_PASSWORD": right},
            'database "nowhere" does not exist',
        ),
        "unreachable host": (
            {"MLFLOW_DATABASE_URL": f"postgresql+psycopg://probe@127.0.0.1:{free_port()}/probe",
             "MLFLOW_DATABASE_PASSWORD": right},
            "Connection refused",
        ),
        "URL without the psycopg driver": (
            {"MLFLOW_DATABASE_URL": f"postgresql://probe:{right}@127.0.0.1:{cluster.port}/probe",
             "MLFLOW_DATABASE_PASSWORD": ""},
            "postgresql+psycopg://",
        ),
        "not a URL": (
            {"MLFLOW_DATABASE_URL": f"probe:{right} at the usual place",
             "MLFLOW_DATABASE_PASSWORD": ""},
            "is not a database URL",
        ),
    }  # fmt: skip


def test_tracking_server_setting_errors_take_one_line_without_credentials(
    own_project,
    postgres,
    probe_role,
    tmp_path,
):
    """Variables in the environment win over .env, so each case sets what it breaks.

    One line also means mlflow never started: it would retry for two minutes, then print
    a traceback.
    """
    wrong = "wrong-" + secrets.token_urlsafe(8)
    # As in a user's shell: uv's own lines (bytecode compiled, and "Installed 2 packages"
    # on the group's first use, done here beforehand) are not the target's output.
    quiet = {"UV_COMPILE_BYTECODE": "0"}
    sh("uv run --group server true", own_project, env=quiet)
    before = sorted(str(p) for p in own_project.rglob("*") if ".venv" not in p.parts)
    for case, (settings, expected) in _error_cases(postgres, probe_role, wrong).items():
        env = {**quiet, "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts"), **settings}
        started = time.monotonic()
        result = sh("make tracking-server", own_project, check=False, env=env, timeout=300)
        print(f"{case}: {time.monotonic() - started:.1f} s")
        output = result.stdout + result.stderr
        lines = [line for line in result.stderr.splitlines() if not line.startswith("make:")]
        assert result.returncode != 0, case
        assert len(lines) == 1 and lines[0].startswith("dslc: error: "), (case, output)
        assert expected in lines[0], (case, lines[0])
        assert probe_role not in output and wrong not in output, (case, output)
    after = sorted(str(p) for p in own_project.rglob("*") if ".venv" not in p.parts)
    assert after == before
    assert not (tmp_path / "artifacts").exists()
