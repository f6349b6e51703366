"""Tests of dslc.tracking against real MLflow SQLite stores (offline).

Creating and migrating a SQLite store takes seconds, so most tests start from a copy of
one migrated store made once per session; the tests about brand-new stores make their own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
pytest.importorskip("filelock", reason="filelock not installed (dslc[tracking] extra)")

from mlflow.tracking import MlflowClient  # noqa: E402

from dslc import events, tracking  # noqa: E402
from dslc.tracking import _params, _secrets  # noqa: E402

PY = sys.executable
# mlflow's own tracking URI and experiment live in env vars it sets itself.
_MLFLOW_VARS = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")


@pytest.fixture(autouse=True)
def _no_leftover_mlflow_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in _MLFLOW_VARS:
        monkeypatch.delenv(var, raising=False)
    yield
    while mlflow.active_run() is not None:  # a failing test must not leak a run
        mlflow.end_run("KILLED")


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty mlflow.db made once, through dslc itself."""
    root = tmp_path_factory.mktemp("template")
    (root / "pyproject.toml").write_text('[project]\nname = "t"\n[tool.dslc]\n', encoding="utf-8")
    saved = dict(os.environ)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        tracking.ensure_store(root)
    finally:  # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI: do not leak it
        os.environ.clear()
        os.environ.update(saved)
    return root / "mlflow.db"


@pytest.fixture
def tproj(project: Path, migrated_db: Path) -> Path:
    """The shared ``project`` fixture, with a ready (migrated) store at its root."""
    shutil.copyfile(migrated_db, project / "mlflow.db")
    return project


def client() -> MlflowClient:
    return tracking.client()


def run_data(run_id: str) -> Any:
    return client().get_run(run_id)


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "T")
    git(root, "add", "-f", "pyproject.toml")
    git(root, "commit", "-qm", "init")


# -- URI and store ---------------------------------------------------------------------


def test_uri_defaults_to_sqlite_at_root_from_any_folder(project: Path) -> None:
    expected = f"sqlite:///{project.as_posix()}/mlflow.db"
    assert tracking.uri() == expected
    os.chdir(project / "notebooks")
    assert tracking.uri() == expected


def test_uri_from_dotenv(project: Path, migrated_db: Path) -> None:
    other = project / "elsewhere.db"
    shutil.copyfile(migrated_db, other)
    (project / ".env").write_text(f"MLFLOW_TRACKING_URI=sqlite:///{other}\n", encoding="utf-8")
    assert tracking.uri() == f"sqlite:///{other}"
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


def test_everything_lands_under_the_root_not_the_cwd(
    tproj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    notebooks = tproj / "notebooks"
    monkeypatch.chdir(notebooks)
    note = notebooks / "note.txt"
    note.write_text("hello", encoding="utf-8")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    with tracking.run() as run:
        run.log_artifact(note)
        saved = run.log_figure(fig, "plots/line.png", save_to=True)
    plt.close(fig)
    assert sorted(p.name for p in notebooks.iterdir()) == ["note.txt"]
    assert saved == tproj / "reports" / "figures" / "line.png" and saved.is_file()
    exp = client().get_experiment(run.experiment_id)
    assert exp.name == "demo-project"
    assert exp.artifact_location == (tproj / "mlartifacts").as_uri()
    artifacts = {a.path for a in client().list_artifacts(run.id)}
    assert artifacts == {"note.txt", "plots"}
    assert list((tproj / "mlartifacts").rglob("line.png"))


def test_experiment_can_be_named(tproj: Path) -> None:
    with tracking.run(experiment="other") as run:
        pass
    exp = client().get_experiment(run.experiment_id)
    assert exp.name == "other"
    assert exp.artifact_location == (tproj / "mlartifacts").as_uri()


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


# -- params, metrics -------------------------------------------------------------------


@dataclass
class _Opt:
    lr: float = 0.1
    layers: tuple[int, ...] = (64, 32)


def test_params_are_flattened_stringified_and_batched(
    tproj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = MlflowClient.log_batch

    def counting(self: MlflowClient, run_id: str, *args: Any, **kw: Any) -> Any:
        calls.append(len(kw.get("params") or ()))
        return real(self, run_id, *args, **kw)

    params: dict[str, Any] = {"model": {"C": 1, "kernel": {"name": "rbf"}}, "opt": _Opt()}
    params.update({f"p{i:03d}": i for i in range(250)})
    with tracking.run(params=params) as run:
        monkeypatch.setattr(MlflowClient, "log_batch", counting)
        run.log_params({"seed": None, "model": {"C": 1}})  # same value again: a no-op
        with pytest.raises(tracking.TrackingError, match="already"):
            run.log_param("model.C", 2)
    logged = run_data(run.id).data.params
    assert logged["model.C"] == "1" and logged["model.kernel.name"] == "rbf"
    assert logged["opt.lr"] == "0.1" and logged["opt.layers"] == "(64, 32)"
    assert logged["seed"] == "None" and logged["p249"] == "249"
    assert len(logged) == 255
    assert calls[0] == 1  # only "seed" was new
    assert max(_params.MAX_PARAMS_PER_BATCH, *calls) == _params.MAX_PARAMS_PER_BATCH


def test_limits_match_mlflow() -> None:
    from mlflow.utils import validation as v

    assert _params.MAX_PARAMS_PER_BATCH == v.MAX_PARAMS_TAGS_PER_BATCH
    assert _params.MAX_METRICS_PER_BATCH == v.MAX_METRICS_PER_BATCH
    assert _params.MAX_PARAM_VALUE_LEN == v.MAX_PARAM_VAL_LENGTH
    assert _params.MAX_TAG_VALUE_LEN == v.MAX_TAG_VAL_LENGTH


def test_metrics_are_buffered_and_batched(tproj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    real = MlflowClient.log_batch

    def counting(self: MlflowClient, run_id: str, *args: Any, **kw: Any) -> Any:
        if kw.get("metrics"):
            sizes.append(len(kw["metrics"]))
        return real(self, run_id, *args, **kw)

    monkeypatch.setattr(MlflowClient, "log_batch", counting)
    before = int(time.time() * 1000)
    with tracking.run() as run:
        for step in range(999):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        assert client().get_metric_history(run.id, "loss") == []  # still buffered
        run.log_metric("loss", 0.0, step=999)  # a full batch: sent now
        assert len(client().get_metric_history(run.id, "loss")) == 1000
        for step in range(1000, 2400):  # 2,800 values: 2 full batches sent, 800 waiting
            tracking.log_metrics({"loss": 0.0, "acc": 1.0}, step=step)
        assert run.flush() == 800 and run.flush() == 0
        run.log_metric("late", 1)  # sent at the end of the run
    history = client().get_metric_history(run.id, "loss")
    assert sorted(m.step for m in history) == list(range(2400))
    assert history[0].timestamp >= before and history[0].value == 1.0
    assert len(client().get_metric_history(run.id, "acc")) == 1400
    assert run_data(run.id).data.metrics["late"] == 1.0
    assert sizes[0] == 1000 and all(s <= 1000 for s in sizes)


def test_logging_needs_a_live_run(tproj: Path) -> None:
    with pytest.raises(tracking.NoActiveRunError):
        tracking.log_metric("x", 1)
    with tracking.run() as run, pytest.raises(tracking.TrackingError, match="number"):
        run.log_metric("x", "abc")  # type: ignore[arg-type]
    with pytest.raises(tracking.NoActiveRunError):
        run.log_metric("x", 1)


# -- nesting and stale runs ------------------------------------------------------------


def test_runs_nest_under_an_enclosing_run(tproj: Path) -> None:
    with tracking.run("outer") as outer:
        with tracking.run() as inner:
            assert tracking.active() is inner
            inner.log_metric("m", 1)
        with pytest.raises(tracking.TrackingError, match="nested=False"):
            tracking.run(nested=False).__enter__()
        assert tracking.active() is outer
    assert tracking.active() is None and mlflow.active_run() is None
    assert inner.parent_id == outer.id
    inner_run = run_data(inner.id)
    assert inner_run.data.tags["mlflow.parentRunId"] == outer.id
    assert inner_run.info.status == "FINISHED" and run_data(outer.id).info.status == "FINISHED"
    assert outer.name == "outer"
    assert re.fullmatch(r"[\w.-]+-\d{8}-\d{6}", inner.name)  # <stem>-YYYYmmdd-HHMMSS


def test_stale_active_run_is_ended_with_a_warning(
    tproj: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracking.ensure_store()
    stale = mlflow.start_run()  # e.g. a notebook cell that raised before end_run
    with caplog.at_level("WARNING", logger="dslc.tracking"), tracking.run() as run:
        pass
    assert run.parent_id is None
    assert run_data(stale.info.run_id).info.status == "KILLED"
    assert any("stale" in r.getMessage() and r.name == "dslc.tracking" for r in caplog.records)


def test_nested_true_nests_under_a_foreign_run(tproj: Path) -> None:
    tracking.ensure_store()
    with mlflow.start_run() as outer, tracking.run(nested=True) as run:
        pass
    assert run.parent_id == outer.info.run_id
    assert run_data(outer.info.run_id).info.status == "FINISHED"


# -- tags ------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_and_environment_tags_from_python_c(project: Path, migrated_db: Path) -> None:
    shutil.copyfile(migrated_db, project / "mlflow.db")
    (project / ".gitignore").write_text("*\n", encoding="utf-8")  # only pyproject tracked
    make_repo(project)
    with (project / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write("# edited\n")  # a tracked file changes: dirty
    code = "from dslc import tracking\nwith tracking.run() as r:\n    print(r.id)\n"
    proc = subprocess.run(
        [PY, "-c", code], cwd=project, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    tags = run_data(proc.stdout.strip().splitlines()[-1]).data.tags
    assert tags["mlflow.source.git.commit"] == git(project, "rev-parse", "HEAD")
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["dslc.git.dirty"] == "true"
    assert tags["mlflow.source.name"] == "python -c"
    assert tags["mlflow.runName"].startswith("python-c-")
    assert tags["dslc.python"] == ".".join(map(str, sys.version_info[:3]))
    assert tags["dslc.pkg.mlflow"] == mlflow.__version__
    assert tags["dslc.project"] == "demo-project"
    assert "dslc.version" in tags


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_clean_repo_is_not_dirty(tproj: Path) -> None:
    (tproj / ".gitignore").write_text("*\n", encoding="utf-8")
    make_repo(tproj)
    with tracking.run() as run:
        pass
    assert run_data(run.id).data.tags["dslc.git.dirty"] == "false"


# -- datasets --------------------------------------------------------------------------


def _inputs(run_id: str) -> list[Any]:
    return list(run_data(run_id).inputs.dataset_inputs)


def test_published_datasets_become_run_inputs(tproj: Path) -> None:
    fp = "sha256:" + "ab" * 32
    location = str(tproj / "data" / "raw" / "iris.csv")
    use = events.DatasetUse("iris", location, fp, "csv", "input")
    with tracking.run() as outer:
        events.publish(use)
        events.publish(use)  # the same use twice: recorded once
        with tracking.run() as inner:  # only the innermost run records
            events.publish(events.DatasetUse(None, "s3://b/x/y.parquet", None, "parquet", "output"))
    assert not events.has_listeners()
    (record,) = _inputs(outer.id)
    assert record.dataset.name == "iris" and record.dataset.digest == fp[7:43]
    assert record.dataset.source_type == "local"
    assert json.loads(record.dataset.source) == {"uri": location}
    assert json.loads(record.dataset.profile)["fingerprint"] == fp
    assert {t.key: t.value for t in record.tags} == {"mlflow.data.context": "input"}
    assert run_data(outer.id).data.tags["dslc.data.iris.fingerprint"] == fp
    (remote,) = _inputs(inner.id)
    assert (remote.dataset.name, remote.dataset.source_type) == ("y.parquet", "s3")
    assert remote.tags[0].value == "output"


def test_data_load_and_save_record_full_fingerprints(tproj: Path) -> None:
    data = pytest.importorskip("dslc.data", reason="dslc.data is not available yet")
    with tracking.run() as run:
        frame = data.load("iris")
        data.save(frame, "processed/iris_copy.csv")
    by_name = {i.dataset.name: i for i in _inputs(run.id)}
    assert set(by_name) == {"iris", "iris_copy.csv"}
    fp_in = data.fingerprint("iris")
    assert by_name["iris"].dataset.digest == fp_in.split(":")[1][:36]
    assert run_data(run.id).data.tags["dslc.data.iris.fingerprint"] == fp_in
    fp_out = data.fingerprint("processed/iris_copy.csv")
    assert json.loads(by_name["iris_copy.csv"].dataset.profile)["fingerprint"] == fp_out


# -- secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True),
        ("db.password", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("apiKey", True),
        ("APIKEY", True),
        ("hf_token", True),
        ("service-credentials", True),
        ("client_secret", True),
        ("keyboard", False),
        ("monkey", False),
        ("tokenizer", False),
        ("max_tokens", False),
        ("learning_rate", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert _secrets.is_secret_name(name) is secret


def test_secrets_never_reach_the_store(tproj: Path) -> None:
    (tproj / ".env").write_text("API_TOKEN=s3cr3t\n", encoding="utf-8")
    with pytest.raises(ValueError), tracking.run(tags={"AWS_SECRET_ACCESS_KEY": "x"}) as run:
        run.log_params(
            {
                "api_key": "abc123",
                "db": {"password": "hunter22", "url": "postgres://u:s3cr3t@h/db"},
                "echo": "s3cr3t",
                "keyboard": "qwerty",
            }
        )
        run.set_tags({"note": "token is s3cr3t", "owner": "me"})
        raise ValueError("connection with s3cr3t refused")
    stored = run_data(run.id).data
    assert stored.params == {"keyboard": "qwerty"}
    assert stored.tags["owner"] == "me"
    withheld = set(stored.tags["dslc.withheld"].split(","))
    assert withheld == {"api_key", "db.password", "db.url", "echo", "AWS_SECRET_ACCESS_KEY", "note"}
    assert stored.tags["dslc.error"] == "ValueError: connection with *** refused"
    with sqlite3.connect(tproj / "mlflow.db") as db:
        dump = "\n".join(db.iterdump())
    for value in ("s3cr3t", "abc123", "hunter22"):
        assert value not in dump


# -- failures --------------------------------------------------------------------------


def test_failed_run_keeps_everything_and_is_marked_failed(tproj: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), tracking.run(params={"a": 1}) as run:
        for step in range(10):
            run.log_metric("loss", step, step=step)
        raise RuntimeError("boom " + "x" * 5000)
    stored = run_data(run.id)
    assert stored.info.status == "FAILED"
    assert stored.data.params == {"a": "1"}
    assert len(client().get_metric_history(run.id, "loss")) == 10
    error = stored.data.tags["dslc.error"]
    assert error.startswith("RuntimeError: boom xxx") and len(error) <= 1000
    assert tracking.active() is None and mlflow.active_run() is None


def test_sys_exit_zero_is_a_normal_end(tproj: Path) -> None:
    with pytest.raises(SystemExit), tracking.run() as run:
        run.log_metric("m", 1)
        sys.exit(0)
    stored = run_data(run.id)
    assert stored.info.status == "FINISHED" and "dslc.error" not in stored.data.tags
    assert stored.data.metrics == {"m": 1.0}


# -- models ----------------------------------------------------------------------------


def test_log_model_with_signature_and_register(tproj: Path) -> None:
    pd = pytest.importorskip("pandas")
    linear_model = pytest.importorskip("sklearn.linear_model")
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    y = [0, 0, 1, 1]
    model = linear_model.LogisticRegression().fit(x, y)
    with tracking.run() as run:
        # Explicit requirements skip MLflow's requirement inference (a subprocess: slow).
        info = run.log_model(model, input_example=x.head(2), pip_requirements=["scikit-learn"])
        first = run.register_model(info, "demo-model")
        second = run.register_model("model", "demo-model")  # by the name given to log_model
    assert info.signature is not None
    assert info.signature.inputs.input_names() == ["a", "b"]
    assert info.signature.outputs is not None
    assert (str(first.version), str(second.version)) == ("1", "2")
    loaded = mlflow.pyfunc.load_model(f"models:/demo-model/{first.version}")
    assert list(loaded.predict(x)) == list(model.predict(x))
    assert list((tproj / "mlartifacts").rglob("MLmodel"))
    assert not (tproj / "mlruns").exists()


def test_importing_tracking_does_not_import_mlflow() -> None:
    code = "import sys, dslc.tracking; assert 'mlflow' not in sys.modules"
    subprocess.run([PY, "-c", code], check=True, timeout=60)
