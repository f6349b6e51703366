"""Tests of dslc.tracking's URI and store: where runs go, how the store is made."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
pytest.importorskip("filelock", reason="filelock not installed (dslc[tracking] extra)")

from mlflow.tracking import MlflowClient  # noqa: E402
from tracking_support import client  # noqa: E402

from dslc import config, tracking  # noqa: E402

PY = sys.executable


def test_a_new_store_made_from_a_subfolder_leaves_nothing_there(project: Path) -> None:
    """Runs go to the project's experiment, with artifacts under <root>/mlartifacts.

    The Default experiment (id 0) keeps MLflow's own default, ./mlruns of the folder that
    made the store: dslc never logs there unless told to (experiment="Default").
    """
    os.chdir(project / "notebooks")
    with tracking.run() as run:
        run.log_artifact(project / "pyproject.toml")
    assert sorted(p.name for p in (project / "notebooks").iterdir()) == []
    assert (project / "mlflow.db").is_file()
    exp = client().get_experiment(run.experiment_id)
    assert exp.name == "demo-project"
    assert exp.artifact_location == (project / "mlartifacts").as_uri()
    assert list((project / "mlartifacts").rglob("pyproject.toml"))
    default = client().get_experiment("0").artifact_location
    assert default == str(project / "notebooks" / "mlruns" / "0")


def test_uri_from_dotenv(project: Path, migrated_db: Path) -> None:
    other = project / "elsewhere.db"
    shutil.copyfile(migrated_db, other)
    (project / ".env").write_text(f"MLFLOW_TRACKING_URI=sqlite:///{other}\n", encoding="utf-8")
    assert config.tracking_uri() == f"sqlite:///{other}"
    with tracking.run() as run:
        pass
    assert mlflow.get_tracking_uri() == f"sqlite:///{other}"
    assert MlflowClient(f"sqlite:///{other}").get_run(run.id).info.status == "FINISHED"
    assert not (project / "mlflow.db").exists()


def test_unreachable_server_is_one_clear_line(project: Path) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = f"http://127.0.0.1:{port}"
    (project / ".env").write_text(f"MLFLOW_TRACKING_URI={server}\n", encoding="utf-8")
    with pytest.raises(tracking.TrackingServerUnreachable) as info:
        tracking.ensure_store()
    message = str(info.value)
    assert server in message and ".env" in message and "\n" not in message


def test_experiment_can_be_named(tproj: Path) -> None:
    with tracking.run(experiment="other") as run:
        pass
    exp = client().get_experiment(run.experiment_id)
    assert exp.name == "other"
    assert exp.artifact_location == (tproj / "mlartifacts").as_uri()
    # The kind MLflow's UI opens on the runs table (not the GenAI overview) for.
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"


_PARALLEL_LAUNCHER = """
import os, sys, time
import mlflow.store.tracking.sqlalchemy_store  # modules only: nothing is opened yet
from dslc import tracking
go = time.time() + 1.0
pids = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:  # a child: open the store at the agreed instant, like 8 scripts at once
        code = 1
        try:
            while time.time() < go:
                time.sleep(0.001)
            with tracking.run() as run:
                run.log_metric("m", 1.0)
            code = 0
        except BaseException as exc:
            print(type(exc).__name__, exc, file=sys.stderr)
        finally:
            os._exit(code)
    pids.append(pid)
codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
print(codes)
sys.exit(max(codes))
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the launcher forks (POSIX only)")
def test_parallel_first_runs_on_a_new_store(project: Path) -> None:
    """8 processes open a brand-new store at the same instant: all succeed.

    A launcher imports mlflow once and forks 8 children (8 separate imports of mlflow
    would take most of a minute on 2 cores); each child opens the store itself. Without
    the lock, plain MLflow fails here for 7 of 8 children (Alembic migration race).
    """
    cwd = project / "notebooks"
    proc = subprocess.run(
        [PY, "-c", _PARALLEL_LAUNCHER], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert (project / "mlflow.db").is_file()
    assert sorted(p.name for p in cwd.iterdir()) == []
    runs = client().search_runs([client().get_experiment_by_name("demo-project").experiment_id])
    assert len(runs) == 8
    assert all(r.data.metrics == {"m": 1.0} for r in runs)


def test_importing_tracking_does_not_import_mlflow() -> None:
    code = "import sys, dslc.tracking; assert 'mlflow' not in sys.modules"
    subprocess.run([PY, "-c", code], check=True, timeout=60)
